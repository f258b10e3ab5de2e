"""The real `openlineage-python` client reporting into a real `pipewarden serve` process.

The collector runs as a subprocess (the console script), on a temporary SQLite file and on
the session's throwaway PostgreSQL server. The client is configured as integrations
configure it: HttpTransport, gzip compression, an API key. Every request it sends is
recorded on the way out (a `requests.Session` that keeps what it sent), so the tests can
prove the bodies were gzip-compressed and carried the key, and compare what the collector
stored with what was sent. The client is never trusted to have delivered: the events are
counted through `GET /api/v1/events/lineage`.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    output_statistics_output_dataset,
    schema_dataset,
    sql_job,
)
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from openlineage.client.uuid import generate_new_uuid

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
API_KEY = "pw-e2e-secret-key"
PRODUCER = "https://github.com/pipewarden/tests/e2e"

NS = "e2e"
JOB = "shop.orders_daily"
PG = "postgres://db.example:5432"
ORDERS = "public.orders"
DAILY = "public.daily_orders"
QUERY = (
    "INSERT INTO public.daily_orders "
    "SELECT date(created_at), count(id), sum(amount) FROM public.orders GROUP BY 1"
)
STARTED = "2024-06-01T10:00:00Z"
COMPLETED = "2024-06-01T10:00:02.500Z"


# --- the collector process --------------------------------------------------------------


@dataclass
class Collector:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _command() -> list[str]:
    """The installed console script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("pipewarden")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "collector.cli"]


def _wait_until_healthy(collector: Collector) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        if collector.process.poll() is not None:
            pytest.fail(
                f"pipewarden serve exited with {collector.process.returncode} before it was "
                f"healthy:\n{collector.output()}"
            )
        try:
            response = httpx.get(f"{collector.url}/healthz", timeout=1.0)
        except httpx.TransportError as error:
            last_error = repr(error)
        else:
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            last_error = f"{response.status_code} {response.text}"
        time.sleep(0.1)
    pytest.fail(
        f"pipewarden serve not healthy after {START_TIMEOUT_S}s ({last_error}):\n"
        f"{collector.output()}"
    )


@pytest.fixture
def collector(database_url: str, tmp_path: Path) -> Iterator[Collector]:
    """`pipewarden serve` on a free port and an empty store; SIGTERM must stop it cleanly."""
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "PIPEWARDEN_DATABASE_URL": database_url,
        "PIPEWARDEN_LOG_LEVEL": "info",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Collector(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        health = _wait_until_healthy(running)
        expected_store = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        expected = {"status": "ok", "store": expected_store, "events_awaiting_derivation": 0}
        assert health == expected, running.output()
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print(running.output())
            pytest.fail(f"pipewarden serve did not stop within {STOP_TIMEOUT_S}s of SIGTERM")
        print(running.output())
    assert code == 0, f"pipewarden serve exited with {code} on SIGTERM:\n{running.output()}"


# --- the client, with what it sent recorded ------------------------------------------------


@dataclass
class Sent:
    headers: dict[str, str]
    body: bytes
    status: int

    def event(self) -> dict[str, Any]:
        """The event the client sent, decompressed the way the collector must."""
        document: dict[str, Any] = json.loads(gzip.decompress(self.body))
        return document


class RecordingSession(requests.Session):
    """A real requests session that keeps each request as it went on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
        self.sent.append(Sent(dict(request.headers), body, response.status_code))
        return response


@dataclass
class Emitter:
    client: OpenLineageClient
    session: RecordingSession
    events: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def emitter(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emitter]:
    # Nothing from the developer's environment may redirect or disable the client.
    for name in list(os.environ):
        if name.startswith("OPENLINEAGE"):
            monkeypatch.delenv(name)
    session = RecordingSession()
    config = HttpConfig(
        url=collector.url,
        timeout=5.0,
        auth=ApiKeyTokenProvider({"apiKey": API_KEY}),
        compression=HttpCompression.GZIP,
        session=session,
    )
    client = OpenLineageClient(transport=HttpTransport(config))
    assert isinstance(client.transport, HttpTransport)
    assert client.transport.compression is HttpCompression.GZIP
    yield Emitter(client, session)
    client.close()
    session.close()


def stored_events(collector: Collector) -> dict[str, Any]:
    response = httpx.get(
        f"{collector.url}/api/v1/events/lineage", params={"sortDirection": "asc"}, timeout=5.0
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def read(collector: Collector, path: str, **params: Any) -> Any:
    response = httpx.get(f"{collector.url}/api/v1{path}", params=params, timeout=5.0)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


def q(name: str) -> str:
    return quote(name, safe="")


# --- the events, built with the client's own classes -----------------------------------------


def _schema(fields: list[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
    )


ORDERS_FIELDS = [("id", "INTEGER"), ("amount", "DECIMAL(10,2)"), ("created_at", "TIMESTAMP")]
DAILY_FIELDS = [("day", "DATE"), ("orders", "BIGINT"), ("revenue", "DECIMAL(12,2)")]


def _from_orders(
    column: str, subtype: str, description: str, *, kind: str = "DIRECT", masking: bool = False
) -> column_lineage_dataset.InputField:
    return column_lineage_dataset.InputField(
        namespace=PG,
        name=ORDERS,
        field=column,
        transformations=[
            column_lineage_dataset.Transformation(
                type=kind, subtype=subtype, description=description, masking=masking
            )
        ],
    )


def _column_lineage() -> column_lineage_dataset.ColumnLineageDatasetFacet:
    fields = column_lineage_dataset.Fields
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "day": fields(inputFields=[_from_orders("created_at", "TRANSFORMATION", "date()")]),
            "orders": fields(
                inputFields=[_from_orders("id", "AGGREGATION", "count(id)", masking=True)]
            ),
            "revenue": fields(inputFields=[_from_orders("amount", "AGGREGATION", "sum()")]),
        },
        dataset=[_from_orders("created_at", "GROUP_BY", "group by day", kind="INDIRECT")],
    )


def run_event(state: RunState, event_time: str, run_id: str) -> RunEvent:
    complete = state is RunState.COMPLETE
    output_facets: dict[str, Any] = {"schema": _schema(DAILY_FIELDS)}
    statistics: dict[str, Any] = {}
    if complete:
        output_facets["columnLineage"] = _column_lineage()
        statistics["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=3, size=96)
        )
    return RunEvent(
        eventType=state,
        eventTime=event_time,
        producer=PRODUCER,
        run=Run(runId=run_id),
        job=Job(
            namespace=NS,
            name=JOB,
            facets={"sql": sql_job.SQLJobFacet(query=QUERY, dialect="postgres")},
        ),
        inputs=[InputDataset(namespace=PG, name=ORDERS, facets={"schema": _schema(ORDERS_FIELDS)})],
        outputs=[
            OutputDataset(namespace=PG, name=DAILY, facets=output_facets, outputFacets=statistics)
        ],
    )


# --- tests --------------------------------------------------------------------------------


def test_client_reports_a_run_that_reads_back_through_the_marquez_api(
    collector: Collector, emitter: Emitter
) -> None:
    run_id = str(generate_new_uuid())
    emitter.client.emit(run_event(RunState.START, STARTED, run_id))
    emitter.client.emit(run_event(RunState.COMPLETE, COMPLETED, run_id))

    # What went on the wire: two gzip bodies with the API key, both answered 201.
    sent = emitter.session.sent
    assert [item.status for item in sent] == [201, 201], collector.output()
    for item in sent:
        assert item.headers["Content-Encoding"] == "gzip"
        assert item.headers["Content-Type"] == "application/json"
        assert item.headers["Authorization"] == f"Bearer {API_KEY}"
        assert item.body[:2] == b"\x1f\x8b", "the body is not gzip data"
        assert item.headers["Content-Length"] == str(len(item.body))
    start, complete = (item.event() for item in sent)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"] == run_id

    # Delivered, not merely attempted: the collector holds exactly the events as sent.
    assert stored_events(collector) == {"events": [start, complete], "totalCount": 2}

    job = read(collector, f"/namespaces/{NS}/jobs/{q(JOB)}")
    assert job["id"] == {"namespace": NS, "name": JOB}
    assert job["inputs"] == [{"namespace": PG, "name": ORDERS}]
    assert job["outputs"] == [{"namespace": PG, "name": DAILY}]
    assert job["facets"] == complete["job"]["facets"]
    assert job["facets"]["sql"]["query"] == QUERY
    assert job["facets"]["sql"]["dialect"] == "postgres"
    location = complete["job"]["facets"].get("sourceCodeLocation", {}).get("url")
    assert job["location"] == location
    assert job["latestRun"]["id"] == run_id
    assert job["latestRun"]["state"] == "COMPLETED"
    assert job["latestRun"]["durationMs"] == 2_500

    run = read(collector, f"/jobs/runs/{run_id}")
    assert run["id"] == run_id
    assert run["state"] == "COMPLETED"
    assert run["startedAt"] == "2024-06-01T10:00:00Z"
    assert run["endedAt"] == "2024-06-01T10:00:02.500000Z"
    assert run["durationMs"] == 2_500
    assert run["facets"] == start["run"]["facets"] | complete["run"]["facets"]
    (output,) = run["outputDatasetVersions"]
    assert output["datasetVersionId"] == {"namespace": PG, "name": DAILY, "version": None}
    assert (output["rowCount"], output["bytes"]) == (3, 96)
    runs = read(collector, f"/namespaces/{NS}/jobs/{q(JOB)}/runs")
    assert [item["id"] for item in runs["runs"]] == [run_id]

    orders = read(collector, f"/namespaces/{q(PG)}/datasets/{q(ORDERS)}")
    assert [(f["name"], f["type"]) for f in orders["fields"]] == ORDERS_FIELDS

    daily = read(collector, f"/namespaces/{q(PG)}/datasets/{q(DAILY)}")
    assert daily["id"] == {"namespace": PG, "name": DAILY}
    assert [(f["name"], f["type"]) for f in daily["fields"]] == DAILY_FIELDS
    assert daily["lastModifiedAt"] == "2024-06-01T10:00:02.500000Z"
    statistics = daily["facets"]["outputStatistics"]
    assert (statistics["rowCount"], statistics["size"]) == (3, 96)
    assert statistics == complete["outputs"][0]["outputFacets"]["outputStatistics"]

    lineage = daily["facets"]["columnLineage"]
    assert lineage == complete["outputs"][0]["facets"]["columnLineage"]
    assert sorted(lineage["fields"]) == ["day", "orders", "revenue"]
    assert lineage["fields"]["day"]["inputFields"] == [
        {
            "namespace": PG,
            "name": ORDERS,
            "field": "created_at",
            "transformations": [
                {
                    "type": "DIRECT",
                    "subtype": "TRANSFORMATION",
                    "description": "date()",
                    "masking": False,
                }
            ],
        }
    ]
    assert lineage["fields"]["orders"]["inputFields"][0]["transformations"][0]["masking"] is True
    assert lineage["dataset"][0]["field"] == "created_at"
    assert lineage["dataset"][0]["transformations"][0]["type"] == "INDIRECT"

    graph = read(collector, "/lineage", nodeId=f"job:{NS}:{JOB}", depth=2)["graph"]
    job_node = f"job:{NS}:{JOB}"
    orders_node = f"dataset:{PG}:{ORDERS}"
    daily_node = f"dataset:{PG}:{DAILY}"
    nodes = {node["id"]: node for node in graph}
    assert {node_id: node["type"] for node_id, node in nodes.items()} == {
        job_node: "JOB",
        orders_node: "DATASET",
        daily_node: "DATASET",
    }
    reads_orders = {"origin": orders_node, "destination": job_node}
    writes_daily = {"origin": job_node, "destination": daily_node}
    assert nodes[job_node]["inEdges"] == [reads_orders]
    assert nodes[job_node]["outEdges"] == [writes_daily]
    assert nodes[orders_node]["outEdges"] == [reads_orders]
    assert nodes[orders_node]["inEdges"] == []
    assert nodes[daily_node]["inEdges"] == [writes_daily]
    assert nodes[daily_node]["outEdges"] == []


def test_a_rejected_event_raises_in_the_client_and_stores_nothing(
    collector: Collector, emitter: Emitter
) -> None:
    """The client surfaces the collector's 422; nothing is stored, nothing swallowed."""
    event = run_event(RunState.START, STARTED, str(generate_new_uuid()))
    event.job = Job(namespace=NS, name="")
    with pytest.raises(requests.HTTPError) as raised:
        emitter.client.emit(event)
    assert raised.value.response is not None
    assert raised.value.response.status_code == 422
    problem = {"field": "job.name", "problem": "String should have at least 1 character"}
    assert problem in raised.value.response.json()["errors"]
    (sent,) = emitter.session.sent
    assert sent.status == 422
    assert sent.headers["Content-Encoding"] == "gzip"
    assert sent.event()["job"]["name"] == ""
    assert stored_events(collector) == {"events": [], "totalCount": 0}

    # The collector is still up and takes the next, valid event.
    emitter.client.emit(run_event(RunState.START, STARTED, str(generate_new_uuid())))
    assert stored_events(collector)["totalCount"] == 1
