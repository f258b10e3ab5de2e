"""`POST /api/v1/lineage`: one OpenLineage event in, stored once, bad input refused untouched."""

from __future__ import annotations

import copy
import gzip
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from collector.api.app import create_app
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.tables import datasets, events, job_io, jobs, runs
from tests.conftest import count_events
from tests.events import (
    DATASET_EVENT,
    JOB_EVENT,
    PRODUCER,
    dataset,
    facet,
    run_event,
)
from tests.settled import SettledClient

# The test client's response (httpx's, or httpx2's when Starlette finds that installed).
Response = Any

LINEAGE = "/api/v1/lineage"
LIMIT = 4096
JSON = {"Content-Type": "application/json"}


# --- fixtures and helpers -------------------------------------------------------------


@dataclass
class Collector:
    """A collector with a small body limit, and an engine to look at its store."""

    client: TestClient
    engine: Engine

    def post(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        return self.client.post(
            LINEAGE, content=orjson.dumps(event), headers={**JSON, **(headers or {})}
        )


@pytest.fixture
def collector(database_url: str) -> Iterator[Collector]:
    """The app with `max_body_bytes` = 4096, started, and an engine on the same store."""
    settings = Settings(database_url=database_url, max_body_bytes=LIMIT)
    with SettledClient(create_app(settings)) as client:
        store = make_engine(database_url)
        try:
            yield Collector(client, store)
        finally:
            store.dispose()


@pytest.fixture
def seeded(collector: Collector) -> Collector:
    """The collector with one valid event already stored, so there is something to not touch."""
    response = collector.post(run_event("START", job="seed"))
    assert response.status_code == 201, response.text
    assert count_events(collector.engine) == 1
    return collector


def stored_payloads(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(events.c.payload).order_by(events.c.id)).scalars()
        return [orjson.loads(row) for row in rows]


def assert_error(
    response: Response,
    status: int,
    fragments: tuple[str, ...],
    field: str | None = None,
    problem: str | None = None,
) -> None:
    """The error shape every refusal has: code, a message naming the problem, per-field errors."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == status
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    if field is None:
        assert body["errors"] == []
        return
    matching = [error for error in body["errors"] if error["field"] == field]
    assert matching, (field, body["errors"])
    assert problem is not None
    assert any(problem in error["problem"] for error in matching), (problem, matching)
    # The message names the field too, not only the structured errors.
    assert field in body["message"]


# --- accepted events ------------------------------------------------------------------


def test_run_event_is_stored(collector: Collector) -> None:
    event = run_event(
        "START",
        inputs=[dataset("orders", fields=[("id", "INTEGER")])],
        outputs=[dataset("daily_totals")],
    )
    response = collector.post(event)
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "stored"}
    with collector.engine.connect() as connection:
        row = connection.execute(select(events)).one()
        assert row.kind == "run"
        assert row.event_type == "START"
        assert row.namespace == "shop"
        assert row.name == "orders_daily"
        assert str(row.run_uuid) == event["run"]["runId"]
        assert orjson.loads(row.payload) == event
        run = connection.execute(select(runs)).one()
        assert str(run.uuid) == event["run"]["runId"]
        assert run.state == "RUNNING"
        names = set(connection.execute(select(datasets.c.name)).scalars())
        assert names == {"orders", "daily_totals"}


def test_dataset_event_is_told_apart_by_schema_url(collector: Collector) -> None:
    event = {
        "eventTime": "2024-05-01T02:00:00Z",
        "producer": PRODUCER,
        "schemaURL": DATASET_EVENT,
        "dataset": dataset("customers", fields=[("id", "INTEGER"), ("email", "TEXT")]),
    }
    response = collector.post(event)
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "stored"}
    with collector.engine.connect() as connection:
        row = connection.execute(select(events)).one()
        assert (row.kind, row.namespace, row.name) == (
            "dataset",
            "postgres://db.example:5432",
            "customers",
        )
        assert row.run_uuid is None
        assert row.event_type is None
        assert row.run_key is None
        assert connection.execute(select(datasets.c.name)).scalars().all() == ["customers"]
        assert connection.execute(select(func.count()).select_from(runs)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(jobs)).scalar_one() == 0


def test_job_event_is_told_apart_by_schema_url(collector: Collector) -> None:
    event = {
        "eventTime": "2024-05-01T02:00:00Z",
        "producer": PRODUCER,
        "schemaURL": JOB_EVENT,
        "job": {"namespace": "shop", "name": "orders_daily", "facets": {}},
        "inputs": [dataset("orders")],
        "outputs": [dataset("daily_totals")],
    }
    response = collector.post(event)
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "stored"}
    with collector.engine.connect() as connection:
        row = connection.execute(select(events)).one()
        assert (row.kind, row.namespace, row.name) == ("job", "shop", "orders_daily")
        assert row.run_uuid is None
        assert row.run_key is None
        assert connection.execute(select(jobs.c.name)).scalars().all() == ["orders_daily"]
        assert connection.execute(select(func.count()).select_from(runs)).scalar_one() == 0
        links = connection.execute(
            select(datasets.c.name, job_io.c.direction).join(
                datasets, datasets.c.id == job_io.c.dataset_id
            )
        ).all()
        assert sorted(links) == [("daily_totals", "output"), ("orders", "input")]


def test_gzip_body_is_accepted(collector: Collector) -> None:
    event = run_event("START")
    response = collector.client.post(
        LINEAGE,
        content=gzip.compress(orjson.dumps(event)),
        headers={**JSON, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "stored"}
    assert stored_payloads(collector.engine) == [event]


def test_byte_identical_duplicate_is_stored_once(collector: Collector) -> None:
    body = orjson.dumps(run_event("COMPLETE", outputs=[dataset("daily_totals", row_count=7)]))
    first = collector.client.post(LINEAGE, content=body, headers=JSON)
    second = collector.client.post(LINEAGE, content=body, headers=JSON)
    assert (first.status_code, first.json()) == (201, {"status": "stored"})
    assert (second.status_code, second.json()) == (201, {"status": "duplicate"})
    assert count_events(collector.engine) == 1


def test_same_content_with_other_key_order_is_a_duplicate(collector: Collector) -> None:
    event = run_event("START")
    reordered = dict(reversed(list(event.items())))
    assert orjson.dumps(reordered) != orjson.dumps(event)
    assert collector.post(event).json() == {"status": "stored"}
    response = collector.post(reordered)
    assert (response.status_code, response.json()) == (201, {"status": "duplicate"})
    assert count_events(collector.engine) == 1


def test_same_run_transition_with_other_content_is_stored_once(collector: Collector) -> None:
    run_id = str(uuid.uuid4())
    first = run_event("START", run_id=run_id, outputs=[dataset("daily_totals")])
    # Same runId, eventType and eventTime (written with another offset); other content.
    again = run_event(
        "START",
        run_id=run_id,
        event_time="2024-05-01T04:00:00+02:00",
        outputs=[dataset("somewhere_else")],
        run_facets={"custom": facet("CustomRunFacet", note="resent")},
    )
    assert collector.post(first).json() == {"status": "stored"}
    response = collector.post(again)
    assert (response.status_code, response.json()) == (201, {"status": "duplicate"})
    assert stored_payloads(collector.engine) == [first]
    with collector.engine.connect() as connection:
        # Nothing was derived from the duplicate either.
        names = connection.execute(select(datasets.c.name)).scalars().all()
        assert names == ["daily_totals"]
        assert connection.execute(select(runs.c.facets)).scalar_one() == {}


def test_other_event_type_of_the_same_run_is_not_a_duplicate(collector: Collector) -> None:
    run_id = str(uuid.uuid4())
    assert collector.post(run_event("START", run_id=run_id)).json() == {"status": "stored"}
    response = collector.post(run_event("COMPLETE", run_id=run_id))
    assert (response.status_code, response.json()) == (201, {"status": "stored"})
    assert count_events(collector.engine) == 2


def test_bearer_authorization_is_accepted(collector: Collector) -> None:
    response = collector.post(run_event("START"), headers={"Authorization": "Bearer some-api-key"})
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "stored"}
    assert count_events(collector.engine) == 1


# --- bad input: 400, 413, 415 ---------------------------------------------------------


def _padded_event(size: int) -> bytes:
    """A valid event whose JSON is at least `size` bytes (padding in an unknown facet)."""
    event = run_event("START", run_facets={"padding": facet("PaddingRunFacet", text="x" * size)})
    return orjson.dumps(event)


def _truncated_gzip() -> bytes:
    whole = gzip.compress(orjson.dumps(run_event("START")))
    return whole[: len(whole) // 2]


@dataclass(frozen=True)
class Bad:
    body: bytes
    status: int
    fragments: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)


BAD_BODIES = {
    "unreadable JSON": Bad(b'{"eventTime": "2024-05-01T02:00:00Z",', 400, ("not valid JSON",)),
    "invalid UTF-8": Bad(b'{"producer": "caf\xe9"}', 400, ("not valid UTF-8",)),
    "top-level array": Bad(orjson.dumps([run_event()]), 400, ("JSON object", "an array")),
    "top-level string": Bad(b'"an event"', 400, ("JSON object", "a string")),
    "top-level number": Bad(b"42", 400, ("JSON object", "a number")),
    "empty body": Bad(b"", 400, ("empty",)),
    "whitespace body": Bad(b" \n\t ", 400, ("empty",)),
    "body over the limit": Bad(_padded_event(LIMIT), 413, ("larger than", str(LIMIT))),
    "gzip that inflates past the limit": Bad(
        gzip.compress(_padded_event(20 * LIMIT)),
        413,
        ("larger than", str(LIMIT)),
        {"Content-Encoding": "gzip"},
    ),
    "unknown Content-Encoding": Bad(
        orjson.dumps(run_event()), 415, ("Content-Encoding", "'br'"), {"Content-Encoding": "br"}
    ),
    "truncated gzip": Bad(
        _truncated_gzip(), 400, ("gzip", "truncated"), {"Content-Encoding": "gzip"}
    ),
    "gzip header on plain JSON": Bad(
        orjson.dumps(run_event()), 400, ("not valid compressed data",), {"Content-Encoding": "gzip"}
    ),
}


def test_the_gzip_bomb_is_small_when_compressed() -> None:
    bomb = BAD_BODIES["gzip that inflates past the limit"].body
    assert len(bomb) < LIMIT // 4
    assert len(gzip.decompress(bomb)) > 20 * LIMIT


@pytest.mark.parametrize("case", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_body_is_refused_and_touches_nothing(seeded: Collector, case: Bad) -> None:
    before = stored_payloads(seeded.engine)
    response = seeded.client.post(LINEAGE, content=case.body, headers={**JSON, **case.headers})
    assert_error(response, case.status, case.fragments)
    assert count_events(seeded.engine) == 1
    assert stored_payloads(seeded.engine) == before


def test_body_over_the_limit_is_refused_while_reading(seeded: Collector) -> None:
    """No Content-Length to go by (chunked): the limit is still enforced while reading."""
    body = _padded_event(LIMIT)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = seeded.client.post(LINEAGE, content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, ("larger than", str(LIMIT)))
    assert count_events(seeded.engine) == 1


def test_body_just_under_the_limit_is_accepted(seeded: Collector) -> None:
    body = _padded_event(LIMIT - 600)
    assert LIMIT - 200 < len(body) <= LIMIT
    response = seeded.client.post(LINEAGE, content=body, headers=JSON)
    assert response.status_code == 201, response.text
    assert count_events(seeded.engine) == 2


# --- bad input: 422 spec violations ---------------------------------------------------


def _without(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(event: dict[str, Any]) -> None:
        target = event
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(event: dict[str, Any]) -> None:
        target = event
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value

    return change


def _base_event() -> dict[str, Any]:
    return run_event(
        "COMPLETE",
        inputs=[dataset("orders", fields=[("id", "INTEGER")])],
        outputs=[dataset("daily_totals", row_count=10)],
    )


_NO_PRODUCER = {"_schemaURL": "https://example.com/CustomFacet.json", "x": 1}
_NO_SCHEMA_URL = {"_producer": PRODUCER, "x": 1}

# change to the base event → (field named in errors[], problem text)
SPEC_VIOLATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "missing run.runId": (_without("run.runId"), "run.runId", "Field required"),
    "runId not a UUID": (_setting("run.runId", "run-42"), "run.runId", "valid UUID"),
    "missing job.name": (_without("job.name"), "job.name", "Field required"),
    "empty job.name": (_setting("job.name", ""), "job.name", "at least 1 character"),
    "missing job.namespace": (_without("job.namespace"), "job.namespace", "Field required"),
    "eventTime a word": (_setting("eventTime", "yesterday"), "eventTime", "ISO-8601 date-time"),
    "eventTime a date only": (
        _setting("eventTime", "2024-05-01"),
        "eventTime",
        "ISO-8601 date-time",
    ),
    "eventTime an epoch number": (
        _setting("eventTime", 1714528800),
        "eventTime",
        "ISO-8601 date-time",
    ),
    "eventTime not a real time": (
        _setting("eventTime", "2024-05-01T25:00:00Z"),
        "eventTime",
        "ISO-8601 date-time",
    ),
    "missing eventTime": (_without("eventTime"), "eventTime", "Field required"),
    "run facet without _producer": (
        _setting("run.facets.custom", _NO_PRODUCER),
        "run.facets.custom._producer",
        "Field required",
    ),
    "job facet without _schemaURL": (
        _setting("job.facets.custom", _NO_SCHEMA_URL),
        "job.facets.custom._schemaURL",
        "Field required",
    ),
    "dataset facet without _producer": (
        _setting("inputs.0.facets.custom", _NO_PRODUCER),
        "inputs[0].facets.custom._producer",
        "Field required",
    ),
    "known dataset facet without _schemaURL": (
        _setting("inputs.0.facets.schema", {"_producer": PRODUCER, "fields": []}),
        "inputs[0].facets.schema._schemaURL",
        "Field required",
    ),
    "output facet without _producer": (
        _setting("outputs.0.outputFacets.custom", _NO_PRODUCER),
        "outputs[0].outputFacets.custom._producer",
        "Field required",
    ),
    "missing producer": (_without("producer"), "producer", "Field required"),
    "producer not a URI": (_setting("producer", "my laptop"), "producer", "URI"),
    "missing schemaURL": (_without("schemaURL"), "schemaURL", "Field required"),
    "unknown eventType": (_setting("eventType", "FINISHED"), "eventType", "COMPLETE"),
    "rowCount a word": (
        _setting("outputs.0.outputFacets.outputStatistics.rowCount", "many"),
        "outputs[0].outputFacets.outputStatistics.rowCount",
        "valid integer",
    ),
    "rowCount a numeric string": (
        _setting("outputs.0.outputFacets.outputStatistics.rowCount", "10"),
        "outputs[0].outputFacets.outputStatistics.rowCount",
        "valid integer",
    ),
    "assertion success a string": (
        _setting(
            "inputs.0.inputFacets",
            {
                "dataQualityAssertions": {
                    **_NO_SCHEMA_URL,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
                    "assertions": [{"assertion": "not_null", "success": "false"}],
                }
            },
        ),
        "inputs[0].inputFacets.dataQualityAssertions.assertions[0].success",
        "valid boolean",
    ),
    "rowCount negative": (
        _setting("outputs.0.outputFacets.outputStatistics.rowCount", -1),
        "outputs[0].outputFacets.outputStatistics.rowCount",
        "greater than or equal to 0",
    ),
}


@pytest.mark.parametrize(
    ("change", "field", "problem"), SPEC_VIOLATIONS.values(), ids=SPEC_VIOLATIONS.keys()
)
def test_spec_violation_is_422_naming_the_field(
    seeded: Collector, change: Callable[[dict[str, Any]], None], field: str, problem: str
) -> None:
    event = _base_event()
    assert seeded.post(event).status_code == 201  # the unbroken event is valid
    before = stored_payloads(seeded.engine)
    broken = copy.deepcopy(event)
    broken["run"]["runId"] = str(uuid.uuid4())  # not a duplicate of the one stored
    broken["job"]["name"] = "another_job"
    change(broken)
    response = seeded.post(broken)
    assert_error(response, 422, ("OpenLineage spec",), field, problem)
    assert count_events(seeded.engine) == 2
    assert stored_payloads(seeded.engine) == before
    with seeded.engine.connect() as connection:
        # Nothing derived either: the broken event's job does not exist.
        assert "another_job" not in connection.execute(select(jobs.c.name)).scalars().all()


def test_dataset_event_without_dataset_is_422(seeded: Collector) -> None:
    event = {"eventTime": "2024-05-01T02:00:00Z", "producer": PRODUCER, "schemaURL": DATASET_EVENT}
    assert_error(seeded.post(event), 422, ("OpenLineage spec",), "dataset", "Field required")
    assert count_events(seeded.engine) == 1


def test_job_event_without_job_name_is_422(seeded: Collector) -> None:
    event = {
        "eventTime": "2024-05-01T02:00:00Z",
        "producer": PRODUCER,
        "schemaURL": JOB_EVENT,
        "job": {"namespace": "shop"},
    }
    assert_error(seeded.post(event), 422, ("OpenLineage spec",), "job.name", "Field required")
    assert count_events(seeded.engine) == 1


def test_every_problem_of_an_event_is_named(seeded: Collector) -> None:
    event = _base_event()
    del event["run"]["runId"]
    del event["job"]["name"]
    event["eventTime"] = "yesterday"
    body = seeded.post(event).json()
    assert body["code"] == 422
    assert {error["field"] for error in body["errors"]} == {"run.runId", "job.name", "eventTime"}
    assert count_events(seeded.engine) == 1


# --- unknown facets are kept as they came ---------------------------------------------


def _event_with_unknown_facets() -> dict[str, Any]:
    nested = {
        "level1": {"level2": [{"a": 1, "b": [True, None, 2.5]}, "text"]},
        "unicode": "Grüße, 東京 ✓",
        "empty": {},
        "zero": 0,
        "float": 1e-7,
    }
    return run_event(
        "COMPLETE",
        run_facets={
            "acme_runContext": facet("AcmeRunContext", team="payments", **nested),
            "nominalTime": facet(
                "NominalTimeRunFacet",
                nominalStartTime="2024-05-01T02:00:00Z",
                vendorExtra={"kept": True},
            ),
        },
        job_facets={"acme_owner": facet("AcmeOwner", owners=[{"name": "ana", "tags": []}])},
        inputs=[
            dataset(
                "orders",
                fields=[("id", "INTEGER")],
                acme_quality={**facet("AcmeQuality"), "score": 0.93, "nested": nested},
            )
        ],
        outputs=[
            {
                **dataset("daily_totals", row_count=3),
                "acme_topLevelField": {"not": "a facet"},
            }
        ],
    ) | {"acme_eventExtra": {"anything": [1, 2, 3]}}


def test_unknown_facets_are_kept_as_they_came(collector: Collector) -> None:
    event = _event_with_unknown_facets()
    event["outputs"][0]["outputFacets"]["acme_written"] = facet("AcmeWritten", partitions=[1, 2])
    body = orjson.dumps(event)
    response = collector.client.post(LINEAGE, content=body, headers=JSON)
    assert response.status_code == 201, response.text

    read = collector.client.get("/api/v1/events/lineage")
    assert read.status_code == 200
    assert read.json() == {"events": [event], "totalCount": 1}

    with collector.engine.connect() as connection:
        payload = connection.execute(select(events.c.payload)).scalar_one()
    assert orjson.loads(payload) == event
    # Byte for byte what was sent (orjson's compact form keeps key order as it came).
    assert payload.encode() == body


def test_unknown_facets_are_kept_in_the_run_facets(collector: Collector) -> None:
    event = _event_with_unknown_facets()
    assert collector.post(event).status_code == 201
    run = collector.client.get(f"/api/v1/jobs/runs/{event['run']['runId']}")
    assert run.status_code == 200, run.text
    assert run.json()["facets"] == event["run"]["facets"]


def test_large_integers_in_unknown_facets_are_kept_exactly(collector: Collector) -> None:
    """JSON has no integer size limit; a 2**70 inside a vendor facet must not become a float."""
    run_id = str(uuid.uuid4())
    body = (
        b'{"eventTime": "2024-05-01T02:00:00Z", "eventType": "START", '
        b'"producer": "' + PRODUCER.encode() + b'", '
        b'"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent", '
        b'"run": {"runId": "' + run_id.encode() + b'", "facets": {"acme": {'
        b'"_producer": "' + PRODUCER.encode() + b'", '
        b'"_schemaURL": "https://example.com/Acme.json", "big": 1180591620717411303424}}}, '
        b'"job": {"namespace": "shop", "name": "big_numbers"}}'
    )
    response = collector.client.post(LINEAGE, content=body, headers=JSON)
    assert response.status_code == 201, response.text
    with collector.engine.connect() as connection:
        payload = connection.execute(select(events.c.payload)).scalar_one()
    assert "1180591620717411303424" in payload, payload


def test_the_openapi_document_describes_both_ingest_routes_beside_the_lineage_graph() -> None:
    document = create_app(Settings()).openapi()
    lineage = document["paths"]["/api/v1/lineage"]
    assert set(lineage) == {"get", "post"}  # the graph read and the event write
    batch = document["paths"]["/api/v1/lineage/batch"]["post"]
    event = lineage["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/RunEvent"} in event["anyOf"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["items"] == event
    answers = {
        "201": lineage["post"]["responses"]["201"],
        "200": batch["responses"]["200"],
    }
    for answer in answers.values():
        reference = answer["content"]["application/json"]["schema"]["$ref"]
        assert reference.rsplit("/", 1)[1] in document["components"]["schemas"]
    assert "duplicate" in lineage["post"]["description"]
