"""What an event derives into the store: runs, facets, schema versions, I/O, edges, checks.

Every derivation depends on event time only: the same events in any arrival order end in
the same state.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Row, select

from collector.store.tables import (
    column_edges,
    datasets,
    job_io,
    jobs,
    quality_assertions,
    run_io,
    runs,
    schema_versions,
)
from tests.events import PRODUCER, dataset, facet, run_event

NS = "postgres://db.example:5432"
T0 = "2024-05-01T02:00:00Z"
T1 = "2024-05-01T02:05:30.250Z"
T2 = "2024-05-01T02:10:00Z"
T3 = "2024-05-01T02:20:00Z"
T4 = "2024-05-01T02:30:00Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def post(client: TestClient, event: dict[str, Any]) -> None:
    response = client.post("/api/v1/lineage", json=event)
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "stored"}


def run_row(engine: Engine, run_id: str) -> Row[Any]:
    with engine.connect() as connection:
        return connection.execute(select(runs).where(runs.c.uuid == uuid.UUID(run_id))).one()


def get_run(client: TestClient, run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/runs/{run_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def api_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def dataset_id(engine: Engine, name: str, namespace: str = NS) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            select(datasets.c.id).where(datasets.c.namespace == namespace, datasets.c.name == name)
        ).scalar_one()
        return int(found)


# --- run state, times, duration -------------------------------------------------------

RUN_LIFECYCLE = [("START", T0), ("RUNNING", T1), ("COMPLETE", T2)]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(range(3))),
    ids=lambda order: "-".join(RUN_LIFECYCLE[i][0] for i in order),
)
def test_run_state_does_not_depend_on_arrival_order(
    client: TestClient, engine: Engine, order: tuple[int, ...]
) -> None:
    run_id = str(uuid.uuid4())
    for i in order:
        event_type, time = RUN_LIFECYCLE[i]
        post(client, run_event(event_type, run_id=run_id, event_time=time))
    row = run_row(engine, run_id)
    assert row.state == "COMPLETED"
    assert row.started_at == at(T0)
    assert row.ended_at == at(T2)
    assert row.duration_ms == 600_000
    assert row.created_at == at(T0)
    assert row.updated_at == at(T2)

    run = get_run(client, run_id)
    assert run["id"] == run_id
    assert run["state"] == "COMPLETED"
    assert api_time(run["startedAt"]) == at(T0)
    assert api_time(run["endedAt"]) == at(T2)
    assert run["durationMs"] == 600_000


@pytest.mark.parametrize("complete_first", [False, True], ids=["in-order", "complete-first"])
def test_start_and_complete_give_times_and_duration(
    client: TestClient, engine: Engine, complete_first: bool
) -> None:
    run_id = str(uuid.uuid4())
    start = run_event("START", run_id=run_id, event_time=T0)
    complete = run_event("COMPLETE", run_id=run_id, event_time=T1)
    for event in [complete, start] if complete_first else [start, complete]:
        post(client, event)
    row = run_row(engine, run_id)
    assert (row.state, row.started_at, row.ended_at) == ("COMPLETED", at(T0), at(T1))
    assert row.duration_ms == 330_250
    run = get_run(client, run_id)
    assert (run["state"], run["durationMs"]) == ("COMPLETED", 330_250)


def test_complete_alone_has_no_start_and_no_duration(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())
    post(client, run_event("COMPLETE", run_id=run_id, event_time=T1))
    row = run_row(engine, run_id)
    assert (row.state, row.started_at, row.ended_at, row.duration_ms) == (
        "COMPLETED",
        None,
        at(T1),
        None,
    )


def test_start_alone_is_running(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())
    post(client, run_event("START", run_id=run_id, event_time=T0))
    row = run_row(engine, run_id)
    assert (row.state, row.started_at, row.ended_at, row.duration_ms) == (
        "RUNNING",
        at(T0),
        None,
        None,
    )


@pytest.mark.parametrize("fail_first", [False, True], ids=["in-order", "fail-first"])
def test_fail_gives_failed_with_error_message(
    client: TestClient, engine: Engine, fail_first: bool
) -> None:
    run_id = str(uuid.uuid4())
    error = facet("ErrorMessageRunFacet", message="division by zero", programmingLanguage="python")
    start = run_event("START", run_id=run_id, event_time=T0)
    fail = run_event("FAIL", run_id=run_id, event_time=T2, run_facets={"errorMessage": error})
    for event in [fail, start] if fail_first else [start, fail]:
        post(client, event)
    row = run_row(engine, run_id)
    assert row.state == "FAILED"
    assert (row.started_at, row.ended_at, row.duration_ms) == (at(T0), at(T2), 600_000)
    assert row.error_message == "division by zero"
    run = get_run(client, run_id)
    assert run["state"] == "FAILED"
    assert run["facets"]["errorMessage"]["message"] == "division by zero"


def test_abort_gives_aborted(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())
    post(client, run_event("START", run_id=run_id, event_time=T0))
    post(client, run_event("ABORT", run_id=run_id, event_time=T1))
    assert run_row(engine, run_id).state == "ABORTED"


@pytest.mark.parametrize("running_at", [T1, T3], ids=["during-the-run", "after-complete"])
def test_late_running_does_not_reopen_a_completed_run(
    client: TestClient, engine: Engine, running_at: str
) -> None:
    run_id = str(uuid.uuid4())
    post(client, run_event("START", run_id=run_id, event_time=T0))
    post(client, run_event("COMPLETE", run_id=run_id, event_time=T2))
    post(client, run_event("RUNNING", run_id=run_id, event_time=running_at))
    row = run_row(engine, run_id)
    assert row.state == "COMPLETED"
    assert (row.started_at, row.ended_at, row.duration_ms) == (at(T0), at(T2), 600_000)
    assert get_run(client, run_id)["state"] == "COMPLETED"


def test_late_start_after_complete_does_not_reopen(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())
    post(client, run_event("COMPLETE", run_id=run_id, event_time=T2))
    post(client, run_event("START", run_id=run_id, event_time=T0))
    post(client, run_event("START", run_id=run_id, event_time=T1))  # a resent, later START
    row = run_row(engine, run_id)
    assert row.state == "COMPLETED"
    # The earliest START is when the run started.
    assert (row.started_at, row.ended_at, row.duration_ms) == (at(T0), at(T2), 600_000)


# --- run facets merged by event time --------------------------------------------------


def _custom(value: str) -> dict[str, Any]:
    return facet("CustomRunFacet", value=value)


def test_newer_facet_wins_older_fills_a_gap(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())
    complete = run_event(
        "COMPLETE",
        run_id=run_id,
        event_time=T2,
        run_facets={"a": _custom("new"), "c": _custom("new")},
    )
    start = run_event(
        "START",
        run_id=run_id,
        event_time=T0,
        run_facets={"a": _custom("old"), "b": _custom("old")},
    )
    post(client, complete)
    post(client, start)  # older: only fills the gap ("b")
    expected = {"a": _custom("new"), "b": _custom("old"), "c": _custom("new")}
    assert run_row(engine, run_id).facets == expected
    assert get_run(client, run_id)["facets"] == expected


FACET_EVENTS = [
    ("START", T0, {"a": "0", "b": "0"}),
    ("RUNNING", T1, {"a": "1"}),
    ("COMPLETE", T2, {"c": "2"}),
]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(range(3))),
    ids=lambda order: "-".join(FACET_EVENTS[i][0] for i in order),
)
def test_run_facets_do_not_depend_on_arrival_order(
    client: TestClient, engine: Engine, order: tuple[int, ...]
) -> None:
    """Each facet comes from the newest event that carried it, whatever the arrival order."""
    run_id = str(uuid.uuid4())
    for i in order:
        event_type, time, values = FACET_EVENTS[i]
        run_facets = {name: _custom(value) for name, value in values.items()}
        post(client, run_event(event_type, run_id=run_id, event_time=time, run_facets=run_facets))
    expected = {"a": _custom("1"), "b": _custom("0"), "c": _custom("2")}
    assert run_row(engine, run_id).facets == expected


def test_nominal_time_and_parent_are_derived(client: TestClient, engine: Engine) -> None:
    run_id, parent_id = str(uuid.uuid4()), str(uuid.uuid4())
    run_facets = {
        "nominalTime": facet(
            "NominalTimeRunFacet",
            nominalStartTime="2024-05-01T00:00:00Z",
            nominalEndTime="2024-05-02T00:00:00Z",
        ),
        "parent": facet(
            "ParentRunFacet",
            run={"runId": parent_id},
            job={"namespace": "airflow", "name": "orders_dag"},
        ),
    }
    post(client, run_event("START", run_id=run_id, event_time=T0, run_facets=run_facets))
    row = run_row(engine, run_id)
    assert row.nominal_start_time == at("2024-05-01T00:00:00Z")
    assert row.nominal_end_time == at("2024-05-02T00:00:00Z")
    assert str(row.parent_run_uuid) == parent_id


# --- schema versions ------------------------------------------------------------------

SCHEMA_A = [("id", "INTEGER"), ("amount", "DECIMAL")]
SCHEMA_B = [("id", "INTEGER"), ("amount", "DECIMAL"), ("currency", "TEXT")]
SCHEMA_C = [("id", "INTEGER"), ("amount", "DOUBLE"), ("currency", "TEXT")]


def _write(fields: list[tuple[str, str]], time: str, table: str = "orders") -> dict[str, Any]:
    return run_event(
        "COMPLETE", event_time=time, job="loader", outputs=[dataset(table, fields=fields)]
    )


def _versions(engine: Engine, table: str = "orders") -> list[tuple[list[Any], datetime]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(schema_versions.c.fields, schema_versions.c.event_time)
            .where(schema_versions.c.dataset_id == dataset_id(engine, table))
            .order_by(schema_versions.c.event_time, schema_versions.c.id)
        ).all()
    return [(row.fields, row.event_time) for row in rows]


def _fields(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in pairs]


def test_schema_version_only_when_fields_change(client: TestClient, engine: Engine) -> None:
    post(client, _write(SCHEMA_A, T0))
    assert _versions(engine) == [(_fields(SCHEMA_A), at(T0))]

    post(client, _write(SCHEMA_A, T1))  # same fields again: no new version
    assert len(_versions(engine)) == 1

    post(client, _write(SCHEMA_B, T2))  # a field added
    post(client, _write(SCHEMA_B, T3))  # and the same again
    post(client, _write(SCHEMA_C, T4))  # a type changed
    assert _versions(engine) == [
        (_fields(SCHEMA_A), at(T0)),
        (_fields(SCHEMA_B), at(T2)),
        (_fields(SCHEMA_C), at(T4)),
    ]

    response = client.get(f"/api/v1/namespaces/{quote(NS, safe='')}/datasets/orders")
    assert response.status_code == 200, response.text
    assert [(f["name"], f["type"]) for f in response.json()["fields"]] == SCHEMA_C


def test_a_field_description_alone_is_not_a_new_version(client: TestClient, engine: Engine) -> None:
    post(client, _write(SCHEMA_A, T0))
    event = _write(SCHEMA_A, T1)
    event["outputs"][0]["facets"]["schema"]["fields"][0]["description"] = "the order id"
    post(client, event)
    assert len(_versions(engine)) == 1


SCHEMA_EVENTS = [(SCHEMA_A, T0), (SCHEMA_B, T1), (SCHEMA_B, T2)]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(range(3))),
    ids=lambda order: "-".join(SCHEMA_EVENTS[i][1][11:16] for i in order),
)
def test_schema_versions_do_not_depend_on_arrival_order(
    client: TestClient, engine: Engine, order: tuple[int, ...]
) -> None:
    """A at T0, B at T1, B again at T2: two versions, however the events arrive."""
    for i in order:
        fields, time = SCHEMA_EVENTS[i]
        post(client, _write(fields, time))
    assert _versions(engine) == [(_fields(SCHEMA_A), at(T0)), (_fields(SCHEMA_B), at(T1))]


# --- run_io ---------------------------------------------------------------------------


@pytest.mark.parametrize("complete_first", [False, True], ids=["in-order", "complete-first"])
def test_row_count_from_output_statistics_at_complete(
    client: TestClient, engine: Engine, complete_first: bool
) -> None:
    run_id = str(uuid.uuid4())
    start = run_event(
        "START",
        run_id=run_id,
        event_time=T0,
        inputs=[dataset("orders")],
        outputs=[dataset("daily_totals")],
    )
    complete = run_event(
        "COMPLETE",
        run_id=run_id,
        event_time=T1,
        inputs=[dataset("orders")],
        outputs=[dataset("daily_totals", row_count=1234)],
    )
    complete["outputs"][0]["outputFacets"]["outputStatistics"]["size"] = 56789
    for event in [complete, start] if complete_first else [start, complete]:
        post(client, event)
    with engine.connect() as connection:
        rows = connection.execute(
            select(datasets.c.name, run_io.c.direction, run_io.c.row_count, run_io.c.bytes)
            .join(datasets, datasets.c.id == run_io.c.dataset_id)
            .where(run_io.c.run_uuid == uuid.UUID(run_id))
            .order_by(run_io.c.direction)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("orders", "input", None, None),
        ("daily_totals", "output", 1234, 56789),
    ]
    run = get_run(client, run_id)
    (output,) = run["outputDatasetVersions"]
    assert output["datasetVersionId"]["name"] == "daily_totals"
    assert (output["rowCount"], output["bytes"]) == (1234, 56789)
    assert run["inputDatasetVersions"][0]["rowCount"] is None


def test_newer_statistics_win(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())
    post(
        client,
        run_event("COMPLETE", run_id=run_id, event_time=T2, outputs=[dataset("t", row_count=20)]),
    )
    post(
        client,
        run_event("RUNNING", run_id=run_id, event_time=T1, outputs=[dataset("t", row_count=10)]),
    )
    with engine.connect() as connection:
        assert connection.execute(select(run_io.c.row_count)).scalar_one() == 20


# --- column lineage -------------------------------------------------------------------


def _source(
    name: str, field: str, kind: str, subtype: str, masking: bool = False
) -> dict[str, Any]:
    return {
        "namespace": NS,
        "name": name,
        "field": field,
        "transformations": [
            {
                "type": kind,
                "subtype": subtype,
                "description": f"{subtype} of {field}",
                "masking": masking,
            }
        ],
    }


def _lineage_event(
    time: str, fields: dict[str, list[dict[str, Any]]], whole: list[dict[str, Any]]
) -> dict[str, Any]:
    output = dataset("daily_totals")
    output["facets"]["columnLineage"] = facet(
        "ColumnLineageDatasetFacet",
        fields={name: {"inputFields": sources} for name, sources in fields.items()},
        dataset=whole,
    )
    return run_event(
        "COMPLETE",
        event_time=time,
        job="totals",
        inputs=[dataset("orders"), dataset("customers")],
        outputs=[output],
    )


def _edges(engine: Engine) -> set[tuple[Any, ...]]:
    inputs = datasets.alias("inputs")
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                column_edges.c.out_field,
                inputs.c.name,
                column_edges.c.in_field,
                column_edges.c.type,
                column_edges.c.subtype,
                column_edges.c.masking,
                column_edges.c.description,
                column_edges.c.event_time,
            )
            .join(inputs, inputs.c.id == column_edges.c.in_dataset_id)
            .where(column_edges.c.out_dataset_id == dataset_id(engine, "daily_totals"))
        ).all()
    return {tuple(row) for row in rows}


FIRST_LINEAGE = {
    "total": [_source("orders", "amount", "DIRECT", "AGGREGATION")],
    "email_hash": [_source("customers", "email", "DIRECT", "TRANSFORMATION", masking=True)],
}
FIRST_WHOLE = [
    _source("orders", "status", "INDIRECT", "FILTER"),
    _source("orders", "day", "INDIRECT", "GROUP_BY"),
]
SECOND_LINEAGE = {"total": [_source("orders", "net_amount", "DIRECT", "AGGREGATION")]}


def test_column_edges_from_column_lineage(client: TestClient, engine: Engine) -> None:
    post(client, _lineage_event(T1, FIRST_LINEAGE, FIRST_WHOLE))
    assert _edges(engine) == {
        (
            "total",
            "orders",
            "amount",
            "DIRECT",
            "AGGREGATION",
            False,
            "AGGREGATION of amount",
            at(T1),
        ),
        (
            "email_hash",
            "customers",
            "email",
            "DIRECT",
            "TRANSFORMATION",
            True,
            "TRANSFORMATION of email",
            at(T1),
        ),
        ("", "orders", "status", "INDIRECT", "FILTER", False, "FILTER of status", at(T1)),
        ("", "orders", "day", "INDIRECT", "GROUP_BY", False, "GROUP_BY of day", at(T1)),
    }
    with engine.connect() as connection:
        (job_id,) = connection.execute(select(jobs.c.id).where(jobs.c.name == "totals")).one()
        assert set(connection.execute(select(column_edges.c.job_id)).scalars()) == {job_id}
        assert set(connection.execute(select(column_edges.c.source)).scalars()) == {"facet"}


def test_column_edges_replaced_by_newer_lineage(client: TestClient, engine: Engine) -> None:
    post(client, _lineage_event(T1, FIRST_LINEAGE, FIRST_WHOLE))
    newer = _lineage_event(T3, SECOND_LINEAGE, [])
    post(client, newer)
    expected = {
        (
            "total",
            "orders",
            "net_amount",
            "DIRECT",
            "AGGREGATION",
            False,
            "AGGREGATION of net_amount",
            at(T3),
        )
    }
    assert _edges(engine) == expected
    with engine.connect() as connection:
        assert set(connection.execute(select(column_edges.c.run_uuid)).scalars()) == {
            uuid.UUID(newer["run"]["runId"])
        }
    # Older lineage arriving late does not replace the newer one.
    post(client, _lineage_event(T2, FIRST_LINEAGE, FIRST_WHOLE))
    assert _edges(engine) == expected


def test_legacy_transformation_type(client: TestClient, engine: Engine) -> None:
    """Before columnLineage 1-2-0 a field had one transformationType."""
    output = dataset("daily_totals")
    output["facets"]["columnLineage"] = facet(
        "ColumnLineageDatasetFacet",
        fields={
            "total": {
                "inputFields": [{"namespace": NS, "name": "orders", "field": "amount"}],
                "transformationType": "AGGREGATION",
                "transformationDescription": "sum(amount)",
            },
            "email": {
                "inputFields": [{"namespace": NS, "name": "customers", "field": "email"}],
                "transformationType": "MASKED",
            },
        },
    )
    post(client, run_event("COMPLETE", event_time=T1, job="totals", outputs=[output]))
    assert _edges(engine) == {
        ("total", "orders", "amount", "DIRECT", "AGGREGATION", False, "sum(amount)", at(T1)),
        ("email", "customers", "email", "DIRECT", "", True, None, at(T1)),
    }


# --- quality assertions ---------------------------------------------------------------


def test_quality_assertions_from_input_facets(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())
    orders = dataset("orders")
    orders["inputFacets"] = {
        "dataQualityAssertions": facet(
            "DataQualityAssertionsDatasetFacet",
            assertions=[
                {"assertion": "not_null", "success": False, "column": "id", "severity": "error"},
                {"assertion": "row_count_gt_0", "success": True},
            ],
        )
    }
    post(client, run_event("COMPLETE", run_id=run_id, event_time=T1, inputs=[orders]))
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                quality_assertions.c.run_uuid,
                quality_assertions.c.dataset_id,
                quality_assertions.c.assertion,
                quality_assertions.c.column_name,
                quality_assertions.c.success,
                quality_assertions.c.severity,
                quality_assertions.c.event_time,
            ).order_by(quality_assertions.c.assertion)
        ).all()
    orders_id = dataset_id(engine, "orders")
    assert [tuple(row) for row in rows] == [
        (uuid.UUID(run_id), orders_id, "not_null", "id", False, "error", at(T1)),
        (uuid.UUID(run_id), orders_id, "row_count_gt_0", "", True, None, at(T1)),
    ]
    response = client.get(f"/api/v1/namespaces/{quote(NS, safe='')}/datasets/orders")
    assert response.status_code == 200, response.text
    shown = response.json()["facets"]["dataQualityAssertions"]["assertions"]
    assert shown[0] == {
        "assertion": "not_null",
        "success": False,
        "column": "id",
        "severity": "error",
    }


def test_a_rerun_assertion_updates_its_result(client: TestClient, engine: Engine) -> None:
    run_id = str(uuid.uuid4())

    def checked(success: bool, time: str, event_type: str) -> dict[str, Any]:
        orders = dataset("orders")
        orders["inputFacets"] = {
            "dataQualityAssertions": facet(
                "DataQualityAssertionsDatasetFacet",
                assertions=[{"assertion": "not_null", "success": success, "column": "id"}],
            )
        }
        return run_event(event_type, run_id=run_id, event_time=time, inputs=[orders])

    post(client, checked(False, T0, "START"))
    post(client, checked(True, T1, "COMPLETE"))
    with engine.connect() as connection:
        rows = connection.execute(
            select(quality_assertions.c.success, quality_assertions.c.event_time)
        ).all()
    assert [tuple(row) for row in rows] == [(True, at(T1))]


# --- job_io ---------------------------------------------------------------------------


def test_job_io_for_inputs_and_outputs(client: TestClient, engine: Engine) -> None:
    post(
        client,
        run_event(
            "START",
            event_time=T0,
            inputs=[dataset("orders"), dataset("customers")],
            outputs=[dataset("daily_totals")],
        ),
    )
    post(
        client,
        run_event(
            "START",
            event_time=T2,
            inputs=[dataset("orders"), dataset("refunds", namespace="s3://bucket")],
            outputs=[dataset("daily_totals")],
        ),
    )
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                jobs.c.name,
                datasets.c.namespace,
                datasets.c.name,
                job_io.c.direction,
                job_io.c.last_seen,
            )
            .join(jobs, jobs.c.id == job_io.c.job_id)
            .join(datasets, datasets.c.id == job_io.c.dataset_id)
        ).all()
    assert {tuple(row) for row in rows} == {
        ("orders_daily", NS, "orders", "input", at(T2)),
        ("orders_daily", NS, "customers", "input", at(T0)),
        ("orders_daily", "s3://bucket", "refunds", "input", at(T2)),
        ("orders_daily", NS, "daily_totals", "output", at(T2)),
    }
    job = client.get("/api/v1/namespaces/shop/jobs/orders_daily")
    assert job.status_code == 200, job.text
    body = job.json()
    assert sorted((d["namespace"], d["name"]) for d in body["inputs"]) == [
        (NS, "customers"),
        (NS, "orders"),
        ("s3://bucket", "refunds"),
    ]
    assert body["outputs"] == [{"namespace": NS, "name": "daily_totals"}]


def test_job_io_last_seen_does_not_go_back(client: TestClient, engine: Engine) -> None:
    post(client, run_event("START", event_time=T2, inputs=[dataset("orders")]))
    post(client, run_event("START", event_time=T0, inputs=[dataset("orders")]))
    with engine.connect() as connection:
        assert connection.execute(select(job_io.c.last_seen)).scalar_one() == at(T2)


def test_dataset_event_producer_is_not_a_job(client: TestClient, engine: Engine) -> None:
    """A DatasetEvent derives a dataset (and its schema) but no job, run or I/O."""
    event = {
        "eventTime": T0,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset("orders", fields=SCHEMA_A),
    }
    post(client, event)
    assert _versions(engine) == [(_fields(SCHEMA_A), at(T0))]
    with engine.connect() as connection:
        for table in (jobs, runs, job_io, run_io):
            assert connection.execute(select(table)).first() is None
