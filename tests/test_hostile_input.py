"""Hostile input answered calmly, on SQLite and on PostgreSQL.

Every hostile request gets a 4xx in the one error shape (or is stored, where the spec
allows what it holds), never a 5xx; a refusal stores nothing and touches nothing already
stored; and the collector answers `/healthz` after each one. PostgreSQL is where most of
these used to become 500s: NUL in text, index entries over 2.7 kB, 64-bit overflows.
"""

from __future__ import annotations

import gzip
import http.client
import random
import socket
import string
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from collector.api.app import create_app
from collector.api.body import nesting_depth
from collector.openlineage import MAX_FACETS, MAX_NAME_BYTES, MAX_PROBLEMS
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.tables import events
from tests.conftest import count_events
from tests.events import JOB_EVENT, PRODUCER, dataset, facet, run_event
from tests.settled import SettledClient
from tests.shim_helpers import Collector as ServedCollector
from tests.shim_helpers import running_collector

# The test client's response (httpx's, or httpx2's when Starlette finds that installed).
Response = Any

LINEAGE = "/api/v1/lineage"
BATCH = "/api/v1/lineage/batch"
JSON = {"Content-Type": "application/json"}
DEPTH = Settings().max_json_depth
BODY_LIMIT = Settings().max_body_bytes


# --- fixtures and helpers -------------------------------------------------------------


@dataclass
class Collector:
    client: TestClient
    engine: Engine

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Response:
        return self.client.post(path, content=body, headers={**JSON, **(headers or {})})

    def assert_healthy(self) -> None:
        answer = self.client.get("/healthz")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ok"


@pytest.fixture
def collector(database_url: str) -> Iterator[Collector]:
    """The app with its default limits, holding one event that no refusal may touch."""
    with SettledClient(create_app(Settings(database_url=database_url))) as client:
        store = make_engine(database_url)
        try:
            seeded = Collector(client, store)
            assert seeded.post(LINEAGE, orjson.dumps(run_event(job="seed"))).status_code == 201
            yield seeded
        finally:
            store.dispose()


def stored_payloads(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(events.c.payload).order_by(events.c.id)).scalars())


def assert_refused(response: Response, status: int, fragments: tuple[str, ...] = ()) -> Any:
    """The one error shape: code, a message saying what is wrong, per-field problems."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "errors"}, body
    assert body["code"] == status
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    for problem in body["errors"]:
        assert set(problem) == {"field", "problem"}, problem
    return body


def text_of(size: int, seed: int) -> str:
    """`size` ASCII characters that do not compress (PostgreSQL compresses index entries)."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))


def wide_text_of(size: int, seed: int) -> str:
    """`size` bytes of UTF-8 made of random 4-byte characters (CJK extension B)."""
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(0x20000, 0x2A6D0)) for _ in range(size // 4))


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def changed(change: Callable[[dict[str, Any]], None], **overrides: Any) -> bytes:
    """A valid event with inputs, outputs and column lineage, after `change`."""
    event = run_event(
        "COMPLETE",
        inputs=[dataset("public.orders", fields=[("id", "INTEGER")])],
        outputs=[dataset("public.totals", row_count=10)],
        **overrides,
    )
    event["outputs"][0]["facets"]["columnLineage"] = facet(
        "ColumnLineageDatasetFacet",
        fields={
            "total": {
                "inputFields": [
                    {
                        "namespace": "postgres://db.example:5432",
                        "name": "public.orders",
                        "field": "id",
                    }
                ]
            }
        },
    )
    change(event)
    return orjson.dumps(event)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change setting the value at a dotted path (numbers index lists)."""
    *parents, last = path.split(".")

    def change(event: dict[str, Any]) -> None:
        target: Any = event
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value

    return change


def _vendor_facet(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return _set("run.facets.acme", facet("AcmeRunFacet", **fields))


# --- the depth scan -------------------------------------------------------------------

DEPTHS: dict[str, tuple[bytes, int]] = {
    "a scalar": (b"42", 0),
    "an empty object": (b"{}", 1),
    "mixed nesting": (b'{"a": [1, {"b": [[]]}], "c": {}}', 5),
    "brackets in a string": (b'{"a": "[[[{{{"}', 1),
    "an escaped quote before brackets": (b'{"a": "\\"[[["}', 1),
    "an escaped backslash, then the string ends": (b'{"a": "\\\\", "b": [[1]]}', 3),
    "an escaped backslash and quote": (b'["\\\\\\"[", [[]]]', 3),
    "a quote in a key": (b'{"[\\"": [{"x": 1}]}', 3),
    "closing more than opened": (b"]]]}", 0),
}


@pytest.mark.parametrize(("text", "depth"), DEPTHS.values(), ids=DEPTHS.keys())
def test_the_depth_scan_counts_brackets_outside_strings_only(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth
    if depth:  # the scan agrees with a parser
        assert nesting_depth(orjson.dumps(orjson.loads(text))) == depth


# --- bodies refused -------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    body: bytes
    status: int
    fragments: tuple[str, ...] = ()
    at: str | None = None  # the field the errors name (422)
    headers: dict[str, str] = field(default_factory=dict)


LONG = text_of(10_000, seed=1)
ONE_OVER = "a" * (MAX_NAME_BYTES + 1)
TOO_LONG = ("bytes in UTF-8",)
NUL = ("NUL character",)
NOT_JSON = ("not valid JSON",)
_EVENT = orjson.dumps(run_event())

REFUSED: dict[str, Refused] = {
    # nesting: capped before parsing
    "100,000 levels of nesting": Refused(
        b"[" * 100_000 + b"]" * 100_000, 400, ("100000 levels deep", f"limit is {DEPTH}")
    ),
    "one level too deep inside a vendor facet": Refused(
        changed(_vendor_facet(deep=nested(DEPTH - 3))), 400, (f"{DEPTH + 1} levels deep",)
    ),
    "unclosed brackets": Refused(b'{"eventTime": ' + b"[" * 500, 400, ("levels deep",)),
    # not JSON, or not one object
    "invalid UTF-8": Refused(b'{"producer": "caf\xe9"}', 400, ("not valid UTF-8",)),
    "overlong UTF-8 encoding": Refused(b'{"producer": "\xc0\xaf"}', 400, ("not valid UTF-8",)),
    "UTF-16 body": Refused(_EVENT.decode().encode("utf-16"), 400, ("not valid UTF-8",)),
    "NaN": Refused(_EVENT.replace(b'"facets":{}', b'"facets":{"x":NaN}', 1), 400, NOT_JSON),
    "Infinity": Refused(b'{"eventTime": Infinity}', 400, NOT_JSON),
    "-Infinity": Refused(b'{"eventTime": -Infinity}', 400, NOT_JSON),
    "a number too large for a double": Refused(b'{"n": 1e400}', 400, NOT_JSON),
    "a lone surrogate escape": Refused(b'{"producer": "\\ud800"}', 400, NOT_JSON),
    "a raw NUL byte": Refused(b'{"producer": "a\x00b"}', 400, NOT_JSON),
    "a byte-order mark": Refused(b"\xef\xbb\xbf" + _EVENT, 400, NOT_JSON),
    "a JSON array": Refused(orjson.dumps([run_event()]), 400, ("JSON object", "an array")),
    "a JSON string holding an event": Refused(
        orjson.dumps(_EVENT.decode()), 400, ("JSON object", "a string")
    ),
    "null": Refused(b"null", 400, ("JSON object", "null")),
    "empty body": Refused(b"", 400, ("empty",)),
    "whitespace only": Refused(b" \r\n\t ", 400, ("empty",)),
    # too big, or encoded wrongly
    "body over the limit": Refused(
        changed(_vendor_facet(pad="x" * BODY_LIMIT)), 413, ("larger than", str(BODY_LIMIT))
    ),
    "gzip bomb": Refused(
        gzip.compress(b" " * (BODY_LIMIT * 3)),
        413,
        ("larger than",),
        headers={"Content-Encoding": "gzip"},
    ),
    "unknown Content-Encoding": Refused(
        _EVENT, 415, ("'zstd'",), headers={"Content-Encoding": "zstd"}
    ),
    # breaks the spec or what can be stored: 422 naming the field
    "10,000-character job name": Refused(
        changed(_set("job.name", LONG)), 422, TOO_LONG, "job.name"
    ),
    "10,000-character namespace": Refused(
        changed(_set("job.namespace", LONG)), 422, TOO_LONG, "job.namespace"
    ),
    "10,000-character dataset name": Refused(
        changed(_set("inputs.0.name", LONG)), 422, TOO_LONG, "inputs[0].name"
    ),
    "10,000-character schema field": Refused(
        changed(_set("inputs.0.facets.schema.fields.0.name", LONG)),
        422,
        TOO_LONG,
        "inputs[0].facets.schema.fields[0].name",
    ),
    "10,000-character column-lineage field": Refused(
        changed(
            _set(
                "outputs.0.facets.columnLineage.fields",
                {LONG: {"inputFields": [{"namespace": "n", "name": "d", "field": "f"}]}},
            )
        ),
        422,
        TOO_LONG,
        f"outputs[0].facets.columnLineage.fields.{LONG}.[key]",
    ),
    "10,000-character input field": Refused(
        changed(_set("outputs.0.facets.columnLineage.fields.total.inputFields.0.field", LONG)),
        422,
        TOO_LONG,
        "outputs[0].facets.columnLineage.fields.total.inputFields[0].field",
    ),
    "10,000-character quality assertion": Refused(
        changed(
            _set(
                "inputs.0.inputFacets",
                {
                    "dataQualityAssertions": facet(
                        "DataQualityAssertionsDatasetFacet",
                        assertions=[{"assertion": LONG, "success": False}],
                    )
                },
            )
        ),
        422,
        TOO_LONG,
        "inputs[0].inputFacets.dataQualityAssertions.assertions[0].assertion",
    ),
    "a name one byte over the limit": Refused(
        changed(_set("outputs.0.namespace", ONE_OVER)), 422, TOO_LONG, "outputs[0].namespace"
    ),
    "NUL in the job name": Refused(changed(_set("job.name", "a\x00b")), 422, NUL, "job.name"),
    "NUL in a vendor facet": Refused(
        changed(_vendor_facet(note="a\x00b")), 422, NUL, "run.facets.acme.note"
    ),
    "NUL in a vendor facet's key": Refused(
        changed(_vendor_facet(**{"a\x00b": 1})), 422, NUL, "run.facets.acme.a\\u0000b"
    ),
    "NUL in an error message": Refused(
        changed(
            _set(
                "run.facets.errorMessage",
                facet("ErrorMessageRunFacet", message="\x00", programmingLanguage="python"),
            )
        ),
        422,
        NUL,
        "run.facets.errorMessage.message",
    ),
    "rowCount past 64 bits": Refused(
        changed(_set("outputs.0.outputFacets.outputStatistics.rowCount", 2**63)),
        422,
        ("less than or equal to 9223372036854775807",),
        "outputs[0].outputFacets.outputStatistics.rowCount",
    ),
    "eventTime past the last UTC time": Refused(
        changed(_set("eventTime", "9999-12-31T23:59:59-01:00")),
        422,
        ("years 1 and 9999",),
        "eventTime",
    ),
    "transformation type longer than its column": Refused(
        changed(
            _set(
                "outputs.0.facets.columnLineage.fields.total.inputFields.0.transformations",
                [{"type": "ß" * 9}],  # 18 characters once upper-cased
            )
        ),
        422,
        ("at most 16 characters",),
        "outputs[0].facets.columnLineage.fields.total.inputFields[0].transformations[0].type",
    ),
    "processingType longer than its column": Refused(
        changed(
            _set(
                "job.facets.jobType",
                facet("JobTypeJobFacet", processingType="B" * 17, integration="x"),
            )
        ),
        422,
        ("at most 16 characters",),
        "job.facets.jobType.processingType",
    ),
    "sourceCodeLocation url an object": Refused(
        changed(
            _set(
                "job.facets.sourceCodeLocation",
                facet("SourceCodeLocationJobFacet", type="git", url={"href": "x"}),
            )
        ),
        422,
        ("valid string",),
        "job.facets.sourceCodeLocation.url",
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_hostile_body_is_refused_and_touches_nothing(collector: Collector, case: Refused) -> None:
    before = stored_payloads(collector.engine)
    response = collector.post(LINEAGE, case.body, case.headers)
    body = assert_refused(response, case.status, case.fragments)
    if case.at is not None:
        assert case.at in [problem["field"] for problem in body["errors"]], body["errors"]
    assert stored_payloads(collector.engine) == before
    collector.assert_healthy()


BAD_FACET = {"_producer": PRODUCER}  # no _schemaURL
AMPLIFIERS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "a million invalid inputs": (
        _set("inputs", [{}] * 1_000_000),
        "inputs[0].namespace",
        "Field required",
    ),
    "half a million invalid facets": (
        _set("run.facets", {f"{index:x}": {} for index in range(500_000)}),
        "run.facets",
        f"at most {MAX_FACETS} facets, not 500000",
    ),
    "a thousand invalid facets": (
        _set("run.facets", {f"f{index}": BAD_FACET for index in range(MAX_FACETS)}),
        "$",
        f"and {MAX_FACETS - MAX_PROBLEMS} more problems",
    ),
}


@pytest.mark.parametrize(("change", "at", "problem"), AMPLIFIERS.values(), ids=AMPLIFIERS.keys())
def test_a_small_answer_to_an_event_with_a_million_problems(
    collector: Collector, change: Callable[[dict[str, Any]], None], at: str, problem: str
) -> None:
    """Validation stops early or the answer names the first problems: never an answer
    larger than the question, nor seconds of CPU to write it."""
    body = changed(change)
    assert len(body) <= BODY_LIMIT
    response = collector.post(LINEAGE, body)
    errors = assert_refused(response, 422)["errors"]
    assert len(errors) <= MAX_PROBLEMS + 1
    assert len(response.content) < 50_000
    assert {"field": at, "problem": problem} in errors, errors[-3:]
    assert count_events(collector.engine) == 1  # the seed alone
    collector.assert_healthy()


SPEC_BREAKING = {name: case for name, case in REFUSED.items() if case.status == 422}


@pytest.mark.parametrize("case", SPEC_BREAKING.values(), ids=SPEC_BREAKING.keys())
def test_hostile_event_is_one_invalid_item_of_a_batch(collector: Collector, case: Refused) -> None:
    """In NDJSON and in an array alike: the others are stored, the hostile one named."""
    for as_array in (False, True):
        good = [orjson.dumps(run_event()), orjson.dumps(run_event())]
        items = [good[0], case.body, good[1]]
        body = b"[" + b",".join(items) + b"]" if as_array else b"\n".join(items)
        response = collector.post(BATCH, body)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [result["status"] for result in results] == ["stored", "invalid", "stored"]
        assert case.at is not None
        assert case.at in results[1]["error"]
    assert count_events(collector.engine) == 5
    collector.assert_healthy()


BATCHES_REFUSED: dict[str, Refused] = {
    "100,000 levels of nesting": Refused(b"[" * 100_000 + b"]" * 100_000, 400, ("levels deep",)),
    "an array of events one level too deep": Refused(
        orjson.dumps([orjson.loads(changed(_vendor_facet(deep=nested(DEPTH - 4))))]),
        400,
        (f"{DEPTH + 1} levels deep",),
    ),
    "NaN in an array": Refused(b"[NaN]", 400, NOT_JSON),
    "an object with NUL outside NDJSON": Refused(b'"\\u0000"', 400, ("JSON array of events",)),
    "gzip bomb": Refused(
        gzip.compress(b"[" + b" " * (BODY_LIMIT * 3) + b"]"),
        413,
        ("larger than",),
        headers={"Content-Encoding": "gzip"},
    ),
}


@pytest.mark.parametrize("case", BATCHES_REFUSED.values(), ids=BATCHES_REFUSED.keys())
def test_hostile_batch_is_refused_and_touches_nothing(collector: Collector, case: Refused) -> None:
    before = stored_payloads(collector.engine)
    assert_refused(collector.post(BATCH, case.body, case.headers), case.status, case.fragments)
    assert stored_payloads(collector.engine) == before
    collector.assert_healthy()


def test_a_too_deep_ndjson_line_is_one_invalid_item(collector: Collector) -> None:
    deep = changed(_vendor_facet(deep=nested(DEPTH)))
    body = b"\n".join([orjson.dumps(run_event()), deep, orjson.dumps(run_event())])
    results = collector.post(BATCH, body).json()["results"]
    assert [result["status"] for result in results] == ["stored", "invalid", "stored"]
    assert "line 2 nests arrays and objects" in results[1]["error"]
    collector.assert_healthy()


# --- bodies stored: what the spec allows ----------------------------------------------

STORED: dict[str, bytes] = {
    "unknown fields everywhere": changed(
        lambda event: (
            event.update(acmeTopLevel={"a": [1, {"b": None}]})
            or event["job"].update(acmeJobField=True)
            or event["inputs"][0].update(acmeDatasetField="x")
        )
    ),
    "a 5 MB vendor facet": changed(_vendor_facet(blob=text_of(1000, seed=2) * 5000)),
    "a vendor facet with 50,000 keys": changed(
        _vendor_facet(**{f"k{index}": index for index in range(50_000)})
    ),
    "nesting exactly at the limit": changed(_vendor_facet(deep=nested(DEPTH - 4))),
    "brackets inside strings": changed(_vendor_facet(text="[{" * 10_000 + '\\"[')),
    "the text \\u0000, not a NUL": changed(_vendor_facet(text="\\u0000")),
    "integers past 64 bits in a vendor facet": changed(_vendor_facet(big=2**64 - 1)),
    "every kind of odd character in names": changed(
        _set("job.name", "ünïcödé 🚀 /?#%&=+ .. \t\n 'quoted' \"double\" \\ 中文")
    ),
}


@pytest.mark.parametrize("body", STORED.values(), ids=STORED.keys())
def test_what_the_spec_allows_is_stored_as_sent(collector: Collector, body: bytes) -> None:
    response = collector.post(LINEAGE, body)
    assert response.status_code == 201, response.text
    assert stored_payloads(collector.engine)[-1] == body.decode()
    event = orjson.loads(body)
    run = collector.client.get(f"/api/v1/jobs/runs/{event['run']['runId']}")
    assert run.status_code == 200, run.text
    assert run.json()["facets"] == event["run"]["facets"]
    job = collector.client.get(
        f"/api/v1/namespaces/shop/jobs/{quote(event['job']['name'], safe='')}"
    )
    assert job.status_code == 200, job.text
    collector.assert_healthy()


def test_names_at_the_byte_limit_are_stored_and_read_back(collector: Collector) -> None:
    """Side by side in one index entry, two names of the limit's size still fit PostgreSQL's."""
    namespace, name, column, other = (wide_text_of(MAX_NAME_BYTES, seed) for seed in range(4))
    assert len(namespace.encode()) == MAX_NAME_BYTES
    quality = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": other, "success": False, "column": column}],
    )
    target = dataset(name, namespace, fields=[(column, "INTEGER")], dataQualityAssertions=quality)
    target["facets"]["columnLineage"] = facet(
        "ColumnLineageDatasetFacet",
        fields={column: {"inputFields": [{"namespace": namespace, "name": name, "field": other}]}},
    )
    event = run_event("COMPLETE", namespace=namespace, job=name, outputs=[target])
    response = collector.post(LINEAGE, orjson.dumps(event))
    assert response.status_code == 201, response.text
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}"
    assert collector.client.get(f"{path}/jobs/{quote(name, safe='')}").status_code == 200
    read = collector.client.get(f"{path}/datasets/{quote(name, safe='')}")
    assert read.status_code == 200, read.text
    assert [item["name"] for item in read.json()["fields"]] == [column]
    gate = collector.client.get(f"/api/v1/gates/{quote(namespace, safe='')}/{quote(name, safe='')}")
    assert gate.status_code == 200, gate.text
    # The failed check becomes a finding keyed by all those names together.
    found = wait_for(lambda: collector.client.get("/api/v1/findings?kind=quality").json())
    assert [(f["job"], f["subject"]) for f in found["findings"]] == [(name, column)]
    collector.assert_healthy()


def wait_for(read: Callable[[], Any], seconds: float = 30) -> Any:
    """What `read` returns once it holds something: the evaluator judges off the request."""
    deadline = time.monotonic() + seconds
    while not (value := read())["totalCount"]:
        assert time.monotonic() < deadline, f"nothing after {seconds} s: {value}"
        time.sleep(0.05)
    return value


# --- query and path parameters --------------------------------------------------------

HUGE = "9" * 30
QUERIES: dict[str, tuple[str, int]] = {
    "negative limit": ("/api/v1/namespaces?limit=-1", 400),
    "huge limit": (f"/api/v1/namespaces?limit={HUGE}", 400),
    "limit not a number": ("/api/v1/namespaces?limit=ten", 400),
    "negative offset": ("/api/v1/namespaces/shop/jobs?offset=-1", 400),
    "huge offset": (f"/api/v1/namespaces/shop/datasets?offset={HUGE}", 400),
    "offset past 64 bits": (f"/api/v1/namespaces?offset={2**63}", 400),
    "largest offset": (f"/api/v1/namespaces?offset={2**63 - 1}", 200),
    "offset on runs": (f"/api/v1/namespaces/shop/jobs/seed/runs?offset={HUGE}", 400),
    "before not a time": ("/api/v1/events/lineage?before=yesterday", 400),
    "after past the last UTC time": ("/api/v1/events/lineage?after=9999-12-31T23:59:59-01:00", 400),
    "unknown sortDirection": ("/api/v1/events/lineage?sortDirection=sideways", 400),
    "events offset huge": (f"/api/v1/events/lineage?offset={HUGE}", 400),
    "since not a time": ("/api/v1/findings?since=2024-13-45", 400),
    "since a bare date": ("/api/v1/findings?since=2024-05-01", 200),
    "since past the last UTC time": ("/api/v1/findings?since=9999-12-31T23:59:59-01:00", 400),
    "unknown finding kind": ("/api/v1/findings?kind=meteor", 400),
    "unknown finding status": ("/api/v1/findings?status=maybe", 400),
    "findings limit over the cap": ("/api/v1/findings?limit=10001", 400),
    "findings offset huge": (f"/api/v1/findings?offset={HUGE}", 400),
    "findings filter of 10,000 characters": (f"/api/v1/findings?job={LONG}", 200),
    "NUL in a query filter": ("/api/v1/findings?namespace=a%00b", 400),
    "NUL in maturity's namespace": ("/api/v1/maturity?namespace=%00", 400),
    "empty nodeId": ("/api/v1/lineage?nodeId=", 400),
    "nodeId without a name": ("/api/v1/lineage?nodeId=job:shop", 400),
    "nodeId of an unknown kind": ("/api/v1/lineage?nodeId=table:a:b", 400),
    "negative depth": ("/api/v1/lineage?nodeId=job:shop:seed&depth=-1", 400),
    "huge depth": (f"/api/v1/lineage?nodeId=job:shop:seed&depth={HUGE}", 400),
    "NUL in a nodeId": ("/api/v1/lineage?nodeId=job:sh%00op:seed", 400),
    "10,000-character nodeId": (f"/api/v1/lineage?nodeId=job:{LONG}:{LONG}", 404),
    "column lineage withDownstream not a boolean": (
        "/api/v1/column-lineage?nodeId=job:shop:seed&withDownstream=perhaps",
        400,
    ),
    "column lineage nodeId with one colon": ("/api/v1/column-lineage?nodeId=datasetField:a:b", 400),
    "column lineage nodeId of 2,000 colons": (
        f"/api/v1/column-lineage?nodeId=datasetField:{':' * 2000}",
        404,
    ),
    "kpi window of 30 digits": (f"/api/v1/kpis?window={HUGE}d", 400),
    "kpi window of 400 digits": (f"/api/v1/kpis?window={'9' * 400}w", 400),
    "kpi window of eleven years": ("/api/v1/kpis?window=573w", 400),
    "kpi window negative": ("/api/v1/kpis?window=-1d", 400),
    "run id not a UUID": ("/api/v1/jobs/runs/not-a-uuid", 400),
    "run id with NUL": ("/api/v1/jobs/runs/%00", 400),
    "NUL in a namespace in the path": ("/api/v1/namespaces/sh%00op/jobs", 400),
    "NUL in a job in the path": ("/api/v1/namespaces/shop/jobs/se%00ed", 400),
    "invalid UTF-8 in the path": ("/api/v1/namespaces/%FF%FE/datasets", 404),
    "10,000-character namespace in the path": (f"/api/v1/namespaces/{LONG}/jobs", 404),
    "10,000-character dataset in the path": (f"/api/v1/namespaces/shop/datasets/{LONG}", 404),
    "path traversal in a name": ("/api/v1/namespaces/..%2F..%2Fetc/jobs", 404),
    "gate for a 10,000-character job": (f"/api/v1/gates/shop/{LONG}", 400),
    "gate with NUL in the namespace": ("/api/v1/gates/sh%00op/seed", 400),
    "NUL in a path outside the API": ("/healthz%00", 400),
}


@pytest.mark.parametrize(("path", "status"), QUERIES.values(), ids=QUERIES.keys())
def test_hostile_query_and_path_parameters(collector: Collector, path: str, status: int) -> None:
    before = stored_payloads(collector.engine)
    response = collector.client.get(path)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_refused(response, status)
    assert stored_payloads(collector.engine) == before
    collector.assert_healthy()


POSTS: dict[str, tuple[str, bytes, int]] = {
    "feedback on a finding id past 64 bits": (
        f"/api/v1/findings/{2**63}/feedback",
        b'{"verdict": "confirmed"}',
        400,
    ),
    "feedback on a negative finding id": (
        "/api/v1/findings/-1/feedback",
        b'{"verdict": "confirmed"}',
        400,
    ),
    "feedback nested 100,000 deep": (
        "/api/v1/findings/1/feedback",
        b"[" * 100_000 + b"]" * 100_000,
        400,
    ),
    "feedback NaN": ("/api/v1/findings/1/feedback", b'{"verdict": NaN}', 400),
    "plan nested 100,000 deep": ("/api/v1/gates/shop/seed", b"[" * 100_000 + b"]" * 100_000, 400),
    "plan over the body limit": (
        "/api/v1/gates/shop/seed",
        orjson.dumps({"sql": "x" * BODY_LIMIT}),
        413,
    ),
    "plan with NUL in a dataset name": (
        "/api/v1/gates/shop/seed",
        orjson.dumps({"inputs": [{"namespace": "n", "name": "a\x00b"}]}),
        400,
    ),
    "plan with NUL in its SQL": (
        "/api/v1/gates/shop/seed",
        orjson.dumps({"sql": "SELECT 1\x00"}),
        400,
    ),
    "plan with a 10,000-character dataset name": (
        "/api/v1/gates/shop/seed",
        orjson.dumps({"outputs": [{"namespace": "n", "name": LONG}]}),
        400,
    ),
    "plan an array": ("/api/v1/gates/shop/seed", b"[]", 400),
    "plan not UTF-8": ("/api/v1/gates/shop/seed", b'{"sql": "caf\xe9"}', 400),
    "plan of deeply bracketed SQL": (
        "/api/v1/gates/shop/seed",
        orjson.dumps({"sql": "SELECT " + "(" * 5000 + "1" + ")" * 5000}),
        200,
    ),
}


@pytest.mark.parametrize(("path", "body", "status"), POSTS.values(), ids=POSTS.keys())
def test_hostile_bodies_of_other_routes(
    collector: Collector, path: str, body: bytes, status: int
) -> None:
    before = stored_payloads(collector.engine)
    response = collector.post(path, body)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_refused(response, status)
    assert stored_payloads(collector.engine) == before
    collector.assert_healthy()


def test_a_job_event_with_hostile_names_is_refused_like_a_run_event(collector: Collector) -> None:
    event = {
        "eventTime": "2024-05-01T02:00:00Z",
        "producer": PRODUCER,
        "schemaURL": JOB_EVENT,
        "job": {"namespace": "shop", "name": "x\x00" + LONG},
    }
    body = assert_refused(collector.post(LINEAGE, orjson.dumps(event)), 422)
    problems = [problem["problem"] for problem in body["errors"] if problem["field"] == "job.name"]
    assert any("NUL character" in problem for problem in problems), problems
    assert any("bytes in UTF-8" in problem for problem in problems), problems
    assert count_events(collector.engine) == 1
    collector.assert_healthy()


def test_an_unknown_run_id_is_found_nowhere(collector: Collector) -> None:
    answer = collector.client.get(f"/api/v1/jobs/runs/{uuid.uuid4()}")
    assert_refused(answer, 404)


# --- over the wire: a real `pipewarden serve`, raw requests, whole answers ------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCollector]:
    """A real collector that waits one second for a stalled body (30 by default)."""
    directory = tmp_path_factory.mktemp("hostile")
    with running_collector(directory, PIPEWARDEN_BODY_TIMEOUT="1") as running:
        yield running


def exchange(url: str, request: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send raw bytes and read one whole answer: a cut or missing answer raises."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request + body)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        return answer.status, answer.read()  # IncompleteRead when cut short


def raw(path: str, *headers: str, method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: pipewarden", *headers, "", ""]
    return "\r\n".join(lines).encode()


def chunked(body: bytes, size: int = 65_536) -> bytes:
    pieces = (body[start : start + size] for start in range(0, len(body), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


_TYPE = "Content-Type: application/json"
_PAST_LIMIT = changed(_vendor_facet(pad="x" * BODY_LIMIT))
_BOMB = gzip.compress(b" " * (BODY_LIMIT * 3))
_DEEP = b"[" * 1_000_000 + b"]" * 1_000_000
_NUL_NAME = changed(_set("job.name", "a\x00b"))

# request head, body → the status answered
OVER_THE_WIRE: dict[str, tuple[bytes, bytes, int]] = {
    "Content-Length longer than the body": (
        raw(LINEAGE, _TYPE, "Content-Length: 1000"),
        b'{"eventTime": "2024',
        408,
    ),
    "Content-Length shorter than the body": (
        raw(LINEAGE, _TYPE, "Content-Length: 5"),
        _EVENT,
        400,
    ),
    "Content-Length of a terabyte, nothing sent": (
        raw(LINEAGE, _TYPE, f"Content-Length: {10**12}"),
        b"",
        413,
    ),
    "a gate plan claiming a terabyte": (
        raw("/api/v1/gates/shop/seed", _TYPE, f"Content-Length: {10**12}"),
        b"",
        413,
    ),
    "a chunked body past the limit": (
        raw(LINEAGE, _TYPE, "Transfer-Encoding: chunked"),
        chunked(_PAST_LIMIT),
        413,
    ),
    "a gzip bomb": (
        raw(LINEAGE, _TYPE, "Content-Encoding: gzip", f"Content-Length: {len(_BOMB)}"),
        _BOMB,
        413,
    ),
    "a million levels of nesting": (
        raw(BATCH, _TYPE, f"Content-Length: {len(_DEEP)}"),
        _DEEP,
        400,
    ),
    "invalid UTF-8": (
        raw(LINEAGE, _TYPE, "Content-Length: 17"),
        b'{"producer": "\xe9"}',
        400,
    ),
    "NUL in the job name": (
        raw(LINEAGE, _TYPE, f"Content-Length: {len(_NUL_NAME)}"),
        _NUL_NAME,
        422,
    ),
    "NUL in the path": (raw("/api/v1/namespaces/%00/jobs", method="GET"), b"", 400),
}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("head", "body", "status"), OVER_THE_WIRE.values(), ids=OVER_THE_WIRE.keys()
)
def test_a_real_server_answers_each_hostile_request_whole(
    server: ServedCollector, head: bytes, body: bytes, status: int
) -> None:
    answered, content = exchange(server.url, head, body)
    assert answered == status, content[:500]
    error = orjson.loads(content)
    assert set(error) == {"code", "message", "errors"}
    assert error["code"] == status
    assert exchange(server.url, raw("/healthz", method="GET"))[0] == 200
    assert server.get("/api/v1/events/lineage")["totalCount"] == 0


@pytest.mark.e2e
def test_a_broken_content_length_is_answered_by_the_server_itself(server: ServedCollector) -> None:
    """The HTTP layer refuses what is not HTTP before the app runs: still a whole answer."""
    for length in ("ten", "-5"):
        head = raw(LINEAGE, _TYPE, f"Content-Length: {length}")
        assert exchange(server.url, head, b"{}")[0] == 400
    assert exchange(server.url, raw("/healthz", method="GET"))[0] == 200


@pytest.mark.e2e
def test_a_client_that_hangs_up_mid_body_leaves_no_server_error(server: ServedCollector) -> None:
    """Nobody is left to answer; the collector logs no failure of its own and carries on."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(raw(LINEAGE, _TYPE, "Content-Length: 1000", "Expect: 100-continue"))
        # The server says go on once the route reads the body: it is waiting for it now.
        assert connection.recv(65_536).startswith(b"HTTP/1.1 100 ")
        connection.sendall(b'{"eventTime": ')
        connection.shutdown(socket.SHUT_WR)
        assert connection.recv(65_536) == b""  # closed without an answer: the client left
    assert exchange(server.url, raw("/healthz", method="GET"))[0] == 200
    log = server.log.read_text()
    assert "Traceback" not in log, log
    assert "Exception in ASGI application" not in log, log
