"""A group of events stored together (`store_group`) ends as storing them one by one does.

The events touch every derived row: run states and facets, schema versions, statistics,
column lineage (naming a dataset before it is used), quality checks re-run, job and dataset
events, a `_deleted` facet, and duplicates of both kinds. Each order is stored one event per
transaction with `store`, and again in groups of several sizes with `store_group`, each on a
fresh store; every table must hold the same rows, ids included.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy import event as sa_event

from collector.ingest import Incoming, Outcome, prepare, store, store_group
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import events, metadata, quality_assertions
from tests import postgres
from tests.events import DATASET_EVENT, JOB_EVENT, PRODUCER, dataset, facet, run_event

NS = "postgres://db.example:5432"
RECEIVED_AT = datetime(2024, 5, 2, tzinfo=UTC)
SCHEMA_A = [("id", "INTEGER"), ("amount", "DECIMAL")]
SCHEMA_B = [("id", "INTEGER"), ("amount", "DECIMAL"), ("currency", "TEXT")]
_CHECK = [
    quality_assertions.c.run_uuid,
    quality_assertions.c.dataset_id,
    quality_assertions.c.assertion,
    quality_assertions.c.column_name,
]


def _time(minute: int) -> str:
    return f"2024-05-01T02:{minute:02d}:00Z"


def _checked(name: str, success: bool) -> dict[str, Any]:
    item = dataset(name, fields=SCHEMA_A)
    item["inputFacets"] = {
        "dataQualityAssertions": facet(
            "DataQualityAssertionsDatasetFacet",
            assertions=[
                {"assertion": "not_null", "success": success, "column": "id"},
                {"assertion": "row_count_gt_0", "success": True},
            ],
        )
    }
    return item


def _source(name: str) -> dict[str, Any]:
    return {**facet("DatasourceDatasetFacet"), "name": name}


def _with_lineage(name: str, row_count: int) -> dict[str, Any]:
    output = dataset(name, fields=SCHEMA_B, row_count=row_count)
    source = {"namespace": NS, "name": "refunds", "field": "amount"}
    output["facets"]["columnLineage"] = facet(
        "ColumnLineageDatasetFacet",
        fields={
            "total": {"inputFields": [{"namespace": NS, "name": "orders", "field": "amount"}]},
            "net": {"inputFields": [source], "transformationType": "AGGREGATION"},
        },
    )
    return output


def _dbt_test_run(event_type: str, minute: int, actual: int | None) -> dict[str, Any]:
    """A dbt-ol test run: its check sent both as input facet and dataset facet; without an
    `actual` it did not run (dbt skipped it), and a FAIL of only such checks is ABORTED."""
    check = {"assertion": "unique", "success": actual == 0, "column": "id"}
    if actual is not None:
        check["actual"] = actual
    checks = facet("DataQualityAssertionsDatasetFacet", assertions=[check])
    tested = dataset("orders", dataQualityAssertions=checks)
    tested["inputFacets"] = {"dataQualityAssertions": checks}
    event = run_event(event_type, job="test.unique_orders_id", event_time=_time(minute))
    event["producer"] = "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/dbt"
    event["inputs"] = [tested]
    return event


def mixed_events() -> list[dict[str, Any]]:
    """Events of three runs of two jobs, two dbt test runs, a job event and a dataset event."""
    load, report = str(uuid.uuid4()), str(uuid.uuid4())
    parent = {"runId": str(uuid.uuid4())}
    failed = str(uuid.uuid4())
    custom = facet("CustomRunFacet", value="v")
    events = [
        run_event(
            "START",
            run_id=load,
            job="load",
            event_time=_time(0),
            inputs=[_checked("orders", False), dataset("customers")],
            run_facets={"custom": custom},
        ),
        run_event(
            "RUNNING",
            run_id=load,
            job="load",
            event_time=_time(5),
            run_facets={"custom": {**facet("CustomRunFacet"), "_deleted": True}},
            job_facets={"documentation": facet("DocumentationJobFacet", description="loads")},
        ),
        run_event(
            "COMPLETE",
            run_id=load,
            job="load",
            event_time=_time(10),
            inputs=[_checked("orders", True), dataset("customers", "s3://bucket")],
            outputs=[_with_lineage("daily", 1200)],
        ),
        run_event(
            "START",
            run_id=report,
            job="report",
            event_time=_time(12),
            inputs=[dataset("daily"), dataset("refunds")],
            run_facets={
                "parent": facet("ParentRunFacet", run=parent, job={"namespace": "a", "name": "dag"})
            },
        ),
        run_event(
            "COMPLETE",
            run_id=report,
            job="report",
            event_time=_time(20),
            outputs=[dataset("report", fields=SCHEMA_A, row_count=7)],
        ),
        run_event(
            "FAIL",
            run_id=failed,
            job="load",
            event_time=_time(30),
            inputs=[dataset("orders", fields=SCHEMA_B)],
            outputs=[_with_lineage("daily", 0)],
            run_facets={
                "errorMessage": facet(
                    "ErrorMessageRunFacet", message="boom", programmingLanguage="sql"
                )
            },
        ),
        {
            "eventTime": _time(25),
            "producer": PRODUCER,
            "schemaURL": JOB_EVENT,
            "job": {
                "namespace": "shop",
                "name": "load",
                "facets": {
                    "jobType": facet(
                        "JobTypeJobFacet", processingType="streaming", integration="SPARK"
                    )
                },
            },
            "inputs": [dataset("orders")],
            "outputs": [dataset("archive")],
        },
        {
            "eventTime": _time(15),
            "producer": PRODUCER,
            "schemaURL": DATASET_EVENT,
            "dataset": dataset("orders", fields=SCHEMA_B, dataSource=_source("warehouse")),
        },
    ]
    events += [_dbt_test_run("FAIL", 32, actual=None), _dbt_test_run("COMPLETE", 34, actual=0)]
    resent = dict(events[4])  # the same run transition again, other content: a duplicate
    resent["outputs"] = []
    return [*events, events[0], resent]


def _orders() -> Iterator[list[dict[str, Any]]]:
    events = mixed_events()
    yield events
    yield list(reversed(events))
    for seed in range(3):
        yield random.Random(seed).sample(events, len(events))


@pytest.fixture
def fresh(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], Engine]]:
    """Empty, migrated stores of their own on the test's backend (one at a time)."""
    engines: list[Engine] = []

    def make(label: str) -> Engine:
        for engine in engines:
            engine.dispose()
        url = database_url
        if url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / label}.db"
        else:
            postgres.reset_database(url)
        engines.append(make_engine(url, writer=True))
        upgrade(engines[-1])
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in primary-key order; raw events by content and check results by
    check, without their ids: on PostgreSQL a duplicate event, or a check stored again for
    the same run, uses up an id."""
    by_content = {events: [events.c.content_hash], quality_assertions: _CHECK}
    with engine.connect() as connection:
        dump = {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
            if table not in by_content
        }
        for table, order in by_content.items():
            rows = connection.execute(select(table).order_by(*order))
            dump[table.name] = [tuple(row)[1:] for row in rows]
    return dump


def _one_by_one(engine: Engine, items: Sequence[Incoming]) -> list[Outcome]:
    outcomes = []
    for item in items:
        with engine.begin() as connection:
            outcomes.append(store(connection, item, RECEIVED_AT))
    return outcomes


def _in_groups(engine: Engine, items: Sequence[Incoming], size: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for first in range(0, len(items), size):
        with engine.begin() as connection:
            outcomes += store_group(connection, items[first : first + size], RECEIVED_AT)
    return outcomes


@pytest.mark.parametrize("order", list(range(5)), ids=lambda n: f"order{n}")
def test_a_group_ends_as_its_events_one_by_one(fresh: Callable[[str], Engine], order: int) -> None:
    events = list(_orders())[order]
    items = [prepare(event) for event in events]

    engine = fresh("one_by_one")
    expected_outcomes = _one_by_one(engine, items)
    expected = _dump(engine)
    assert expected_outcomes.count(Outcome.DUPLICATE) == 2
    assert all(expected[name] for name in ("runs", "run_io", "schema_versions", "column_edges"))
    assert expected["quality_assertions"]

    for size in (len(items), 4, 3):
        engine = fresh(f"groups_of_{size}")
        assert _in_groups(engine, items, size) == expected_outcomes
        assert _dump(engine) == expected, f"groups of {size}"


def test_a_group_adds_to_what_is_stored(fresh: Callable[[str], Engine]) -> None:
    """Rows stored by earlier groups are read, changed and written back, not replaced."""
    items = [prepare(event) for event in mixed_events()]
    engine = fresh("one_by_one")
    _one_by_one(engine, items)
    expected = _dump(engine)

    engine = fresh("split")
    _in_groups(engine, items[:5], 5)
    assert (
        _in_groups(engine, items, len(items))
        == [Outcome.DUPLICATE] * 5 + [Outcome.STORED] * 5 + [Outcome.DUPLICATE] * 2
    )
    assert _dump(engine) == expected


def test_the_same_event_twice_in_a_group_is_stored_once(fresh: Callable[[str], Engine]) -> None:
    event = run_event("START", event_time=_time(0), inputs=[dataset("orders")])
    engine = fresh("twice")
    with engine.begin() as connection:
        outcomes = store_group(connection, [prepare(event), prepare(event)], RECEIVED_AT)
    assert outcomes == [Outcome.STORED, Outcome.DUPLICATE]
    dump = _dump(engine)
    assert (len(dump["events"]), len(dump["runs"]), len(dump["run_io"])) == (1, 1, 1)


def test_rows_another_collector_creates_meanwhile_are_updated(postgres_server: str) -> None:
    """On PostgreSQL, a job and dataset another collector commits between this group's look-up
    and its insert end as if the two events had been stored one after the other."""
    setup = run_event("START", job="setup", event_time=_time(0), inputs=[dataset("other")])
    run_id = str(uuid.uuid4())
    docs = facet("DocumentationJobFacet", description="earlier")
    theirs = run_event(
        "START",
        run_id=run_id,
        event_time=_time(1),
        inputs=[dataset("orders", fields=SCHEMA_A)],
        job_facets={"documentation": docs},
    )
    ours = run_event(
        "COMPLETE",
        run_id=run_id,
        event_time=_time(9),
        inputs=[dataset("orders", row_count=5)],
        job_facets={"sql": facet("SQLJobFacet", query="SELECT 1")},
    )
    items = [prepare(event) for event in (setup, theirs, ours)]

    postgres.reset_database(postgres_server)
    reference = make_engine(postgres_server, writer=True)
    upgrade(reference)
    _one_by_one(reference, items)
    expected = _dump(reference)
    reference.dispose()

    postgres.reset_database(postgres_server)
    engine, other = make_engine(postgres_server, writer=True), make_engine(postgres_server)
    upgrade(engine)
    _one_by_one(engine, items[:1])  # the namespaces exist, so neither collector waits on them
    raced: list[str] = []

    def other_collector(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO jobs") and not raced:
            raced.append(statement)
            _one_by_one(other, items[1:2])

    sa_event.listen(engine, "before_cursor_execute", other_collector)
    try:
        assert _in_groups(engine, items[2:], 1) == [Outcome.STORED]
        assert raced
        assert _dump(engine) == expected
    finally:
        engine.dispose()
        other.dispose()
