"""`POST /api/v1/lineage/batch`: a JSON array or NDJSON, one result per item, in order."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from collector.api.app import create_app
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.tables import events, runs
from tests.conftest import count_events
from tests.events import PRODUCER, dataset, run_event
from tests.settled import SettledClient

BATCH = "/api/v1/lineage/batch"
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}
MAX_BATCH = 5

# The test client's response (httpx's, or httpx2's when Starlette finds that installed).
Response = Any


def as_array(items: list[Any]) -> bytes:
    return orjson.dumps(items)


def as_ndjson(items: list[Any]) -> bytes:
    return b"\n".join(orjson.dumps(item) for item in items) + b"\n"


def post_batch(client: TestClient, body: bytes, ndjson: bool = False) -> Response:
    return client.post(BATCH, content=body, headers=NDJSON if ndjson else JSON)


def results_of(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"results"}
    results: list[dict[str, Any]] = body["results"]
    for result in results:
        assert set(result) == {"index", "status", "error"}
    return results


def statuses(results: list[dict[str, Any]]) -> list[str]:
    return [result["status"] for result in results]


def stored_run_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        ids = connection.execute(select(events.c.run_uuid).order_by(events.c.id)).scalars()
        return [str(run_id) for run_id in ids]


def assert_error(response: Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status
    assert body["errors"] == []
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])


@pytest.fixture
def small_batches(database_url: str) -> Iterator[tuple[TestClient, Engine]]:
    """A collector that takes at most MAX_BATCH events per batch, and an engine on its store."""
    settings = Settings(database_url=database_url, max_batch_events=MAX_BATCH)
    with SettledClient(create_app(settings)) as client:
        store = make_engine(database_url)
        try:
            yield client, store
        finally:
            store.dispose()


# --- both formats ---------------------------------------------------------------------


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
def test_batch_stores_every_event(client: TestClient, engine: Engine, ndjson: bool) -> None:
    items = [run_event("START"), run_event("COMPLETE"), run_event("FAIL")]
    body = as_ndjson(items) if ndjson else as_array(items)
    results = results_of(post_batch(client, body, ndjson))
    assert results == [
        {"index": 0, "status": "stored", "error": None},
        {"index": 1, "status": "stored", "error": None},
        {"index": 2, "status": "stored", "error": None},
    ]
    assert stored_run_ids(engine) == [item["run"]["runId"] for item in items]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(runs)).scalar_one() == 3


def test_ndjson_with_crlf_blank_lines_and_no_final_newline(
    client: TestClient, engine: Engine
) -> None:
    items = [run_event("START"), run_event("START")]
    body = b"\r\n".join([orjson.dumps(items[0]), b"", b"   ", orjson.dumps(items[1])])
    assert statuses(results_of(post_batch(client, body, ndjson=True))) == ["stored", "stored"]
    assert count_events(engine) == 2


def test_gzip_ndjson_batch(client: TestClient, engine: Engine) -> None:
    items = [run_event("START") for _ in range(20)]
    response = client.post(
        BATCH,
        content=gzip.compress(as_ndjson(items)),
        headers={**NDJSON, "Content-Encoding": "gzip"},
    )
    assert statuses(results_of(response)) == ["stored"] * 20
    assert count_events(engine) == 20


# --- a big batch with a few bad items -------------------------------------------------


def _thousand() -> tuple[list[Any], dict[int, tuple[str, str]]]:
    """1,000 items: valid events, a few broken ones, and duplicates of earlier items.

    Returns the items and, per index that is not `stored`, (status, fragment of the error).
    """
    items: list[Any] = [
        run_event(
            "START" if i % 2 == 0 else "COMPLETE",
            job=f"job_{i % 37}",
            event_time=f"2024-05-01T02:{i // 60 % 60:02d}:{i % 60:02d}Z",
            outputs=[dataset(f"table_{i % 11}", row_count=i)],
        )
        for i in range(1000)
    ]
    expected: dict[int, tuple[str, str]] = {}

    del items[3]["run"]["runId"]
    expected[3] = ("invalid", "run.runId: Field required")

    items[500]["eventTime"] = "2024-05-01"
    expected[500] = ("invalid", "eventTime: must be an ISO-8601 date-time")

    items[999]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] = "lots"
    expected[999] = ("invalid", "outputs[0].outputFacets.outputStatistics.rowCount")

    items[250] = 42
    expected[250] = ("invalid", "an event is a JSON object, not a number")

    items[640]["run"]["facets"]["custom"] = {"_schemaURL": "https://example.com/X.json"}
    expected[640] = ("invalid", "run.facets.custom._producer: Field required")

    # Byte-identical to an earlier item, and the same run transition with other content.
    items[101] = orjson.loads(orjson.dumps(items[100]))
    expected[101] = ("duplicate", "")
    items[801] = run_event(
        items[800]["eventType"],
        run_id=items[800]["run"]["runId"],
        event_time=items[800]["eventTime"],
        job="something_else",
    )
    expected[801] = ("duplicate", "")
    return items, expected


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
def test_thousand_events_with_a_few_invalid(
    client: TestClient, engine: Engine, ndjson: bool
) -> None:
    items, expected = _thousand()
    if ndjson:
        body = as_ndjson(items)
        lines = body.split(b"\n")
        lines[700] = b'{"eventTime": "2024-05-01T02:00:00Z", "producer": '  # cut short
        expected[700] = ("invalid", "line 701 is not valid JSON")
        body = b"\n".join(lines)
    else:
        body = as_array(items)

    results = results_of(post_batch(client, body, ndjson))

    assert len(results) == 1000
    assert [result["index"] for result in results] == list(range(1000))
    for index, result in enumerate(results):
        status, fragment = expected.get(index, ("stored", ""))
        assert result["status"] == status, (index, result)
        if status == "invalid":
            assert fragment in result["error"], (index, result)
        else:
            assert result["error"] is None, (index, result)
    stored = [i for i in range(1000) if i not in expected]
    assert count_events(engine) == len(stored) == 1000 - len(expected)
    assert stored_run_ids(engine) == [items[i]["run"]["runId"] for i in stored]


# --- duplicates -----------------------------------------------------------------------


def test_duplicates_inside_one_batch(client: TestClient, engine: Engine) -> None:
    first = run_event("START")
    same_transition = run_event(
        "START", run_id=first["run"]["runId"], outputs=[dataset("elsewhere")]
    )
    items = [first, run_event("START"), first, same_transition]
    results = results_of(post_batch(client, as_array(items)))
    assert statuses(results) == ["stored", "stored", "duplicate", "duplicate"]
    assert count_events(engine) == 2


def test_duplicates_across_batches(client: TestClient, engine: Engine) -> None:
    first = [run_event("START"), run_event("START")]
    assert statuses(results_of(post_batch(client, as_array(first)))) == ["stored", "stored"]
    second = [run_event("COMPLETE"), first[1], first[0]]
    assert statuses(results_of(post_batch(client, as_ndjson(second), ndjson=True))) == [
        "stored",
        "duplicate",
        "duplicate",
    ]
    assert count_events(engine) == 3


def test_single_then_batch_duplicate(client: TestClient, engine: Engine) -> None:
    event = run_event("START")
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    assert statuses(results_of(post_batch(client, as_array([event])))) == ["duplicate"]
    assert count_events(engine) == 1


# --- refused batches ------------------------------------------------------------------


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
def test_more_than_max_batch_events_is_413_and_stores_nothing(
    small_batches: tuple[TestClient, Engine], ndjson: bool
) -> None:
    client, engine = small_batches
    assert statuses(results_of(post_batch(client, as_array([run_event()])))) == ["stored"]
    items = [run_event("START") for _ in range(MAX_BATCH + 1)]
    body = as_ndjson(items) if ndjson else as_array(items)
    response = post_batch(client, body, ndjson)
    assert_error(response, 413, f"{MAX_BATCH + 1} events", f"limit is {MAX_BATCH}")
    assert count_events(engine) == 1


def test_exactly_max_batch_events_is_accepted(small_batches: tuple[TestClient, Engine]) -> None:
    client, engine = small_batches
    items = [run_event("START") for _ in range(MAX_BATCH)]
    assert statuses(results_of(post_batch(client, as_array(items)))) == ["stored"] * MAX_BATCH
    assert count_events(engine) == MAX_BATCH


BAD_BATCHES = {
    "empty body": (b"", 400, ("empty",)),
    "whitespace only": (b"  \n\n ", 400, ("empty",)),
    "a string": (b'"events"', 400, ("JSON array of events or NDJSON",)),
    "a number": (b"12", 400, ("JSON array of events or NDJSON",)),
    "plain text": (b"hello world\n", 400, ("JSON array of events or NDJSON",)),
    "broken array": (b'[{"eventTime": "2024-05-01T02:00:00Z"},', 400, ("not valid JSON",)),
    "invalid UTF-8 array": (b'[{"producer": "caf\xe9"}]', 400, ("not valid UTF-8",)),
}


@pytest.mark.parametrize(
    ("body", "status", "fragments"), BAD_BATCHES.values(), ids=BAD_BATCHES.keys()
)
def test_bad_batch_body_is_refused_and_touches_nothing(
    client: TestClient, engine: Engine, body: bytes, status: int, fragments: tuple[str, ...]
) -> None:
    assert statuses(results_of(post_batch(client, as_array([run_event()])))) == ["stored"]
    assert_error(post_batch(client, body), status, *fragments)
    assert count_events(engine) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_the_batch_is_only_taken_by_post(client: TestClient, engine: Engine, method: str) -> None:
    body = as_array([run_event()])
    assert_error(client.request(method, "/api/v1/lineage/batch", content=body), 405, "POST")
    assert count_events(engine) == 0


def test_empty_array_is_an_empty_result(client: TestClient, engine: Engine) -> None:
    assert results_of(post_batch(client, b"[]")) == []
    assert count_events(engine) == 0


def test_invalid_utf8_ndjson_line_is_one_invalid_item(client: TestClient, engine: Engine) -> None:
    good = orjson.dumps(run_event("START"))
    body = good + b'\n{"producer": "caf\xe9"}\n' + orjson.dumps(run_event("START"))
    results = results_of(post_batch(client, body, ndjson=True))
    assert statuses(results) == ["stored", "invalid", "stored"]
    assert "line 2 is not valid UTF-8" in results[1]["error"]
    assert count_events(engine) == 2


def test_non_object_items_are_invalid(client: TestClient, engine: Engine) -> None:
    items: list[Any] = [run_event(), [], "event", None, {"producer": PRODUCER}]
    results = results_of(post_batch(client, as_array(items)))
    assert statuses(results) == ["stored", "invalid", "invalid", "invalid", "invalid"]
    assert "not an array" in results[1]["error"]
    assert "not a string" in results[2]["error"]
    assert "not null" in results[3]["error"]
    assert "eventTime: Field required" in results[4]["error"]
    assert count_events(engine) == 1


def test_batch_items_are_validated_like_single_events(client: TestClient) -> None:
    """The same event gets the same verdict from both endpoints."""
    event = run_event("START", run_id=str(uuid.uuid4()))
    event["run"]["runId"] = "not-a-uuid"
    single = client.post("/api/v1/lineage", json=event)
    assert single.status_code == 422
    (result,) = results_of(post_batch(client, as_array([event])))
    assert result["status"] == "invalid"
    assert result["error"] == single.json()["message"].removeprefix(
        "the event breaks the OpenLineage spec: "
    )
