"""`pipewarden run` asks the gate before it starts the command: the client's side.

A stub HTTP server stands in for the collector here, because these tests need answers a
healthy collector never gives (slow, 500, unreadable, 404) and exact control of the
decision. The same behaviour against the real gate is in tests/gates/test_gate_shim.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.shim_helpers import (
    NAMESPACE,
    by_type,
    pipewarden,
    run_args,
    shim_env,
    spooled,
    unique_job,
)

pytestmark = pytest.mark.e2e

REASON = {
    "rule": "schema_breaking",
    "severity": "error",
    "dataset": "x",
    "column": "y",
    "message": "column y was dropped",
}
ENFORCE_BLOCK = {
    "decision": "block",
    "mode": "enforce",
    "effective": "block",
    "reasons": [REASON],
    "decisionId": "1",
    "decidedAt": "2024-01-01T00:00:00Z",
}
MONITOR_BLOCK = {**ENFORCE_BLOCK, "mode": "monitor", "effective": "allow", "decisionId": "2"}
ALLOW = {
    "decision": "allow",
    "mode": "enforce",
    "effective": "allow",
    "reasons": [],
    "decisionId": "3",
    "decidedAt": "2024-01-01T00:00:00Z",
}


@dataclass
class StubCollector:
    """What the stub was asked, and how it answers the gate."""

    url: str = ""
    gate_answer: Any = field(default_factory=lambda: ALLOW)
    gate_status: int = 200
    gate_delay: float = 0.0
    gate_requests: list[tuple[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)


def _handler(stub: StubCollector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the shim's client uses it

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            stub.authorizations.append(self.headers.get("Authorization"))
            if self.path.startswith("/api/v1/gates/"):
                stub.gate_requests.append((self.path, body))
                time.sleep(stub.gate_delay)
                self._answer(stub.gate_status, stub.gate_answer)
            elif self.path == "/api/v1/lineage":
                stub.events.append(body)
                self._answer(201, {"status": "stored"})
            else:
                self._answer(404, {"code": 404, "message": "not found"})

        def _answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the shim gave up waiting: that is what a delay test is about

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stub() -> Iterator[StubCollector]:
    state = StubCollector()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_an_enforcing_block_stops_the_command_before_it_starts(
    stub: StubCollector, tmp_path: Path
) -> None:
    stub.gate_answer = ENFORCE_BLOCK
    sql = tmp_path / "load.sql"
    sql.write_text("INSERT INTO daily SELECT id FROM orders")
    marker = tmp_path / "started"
    job = unique_job("blocked")
    result = pipewarden(
        run_args(
            job,
            ["touch", str(marker)],
            "--input",
            "public.orders",
            "--output",
            "public.daily",
            "--sql",
            str(sql),
        ),
        shim_env(stub.url, tmp_path / "spool"),
    )
    assert result.returncode == 1
    assert not marker.exists(), "the command ran although the gate blocked it"
    assert "column y was dropped" in result.err
    assert "schema_breaking" in result.err
    assert "blocked" in result.err

    [(path, plan)] = stub.gate_requests
    assert path == f"/api/v1/gates/{NAMESPACE}/{job}"
    assert plan["inputs"] == [{"namespace": NAMESPACE, "name": "public.orders"}]
    assert plan["outputs"] == [{"namespace": NAMESPACE, "name": "public.daily"}]
    assert plan["sql"] == "INSERT INTO daily SELECT id FROM orders"

    assert by_type(stub.events) == ["ABORT"]  # no START: nothing was started
    [aborted] = stub.events
    assert (aborted["job"]["namespace"], aborted["job"]["name"]) == (NAMESPACE, job)
    gate = aborted["run"]["facets"]["pipewarden_gate"]
    assert gate["status"] == "answered"
    assert (gate["decision"], gate["mode"], gate["effective"]) == ("block", "enforce", "block")
    assert gate["reasons"] == [REASON]
    assert gate["decisionId"] == "1"
    assert spooled(tmp_path / "spool") == []


def test_a_monitor_mode_block_runs_the_command_with_a_warning(
    stub: StubCollector, tmp_path: Path
) -> None:
    stub.gate_answer = MONITOR_BLOCK
    marker = tmp_path / "started"
    job = unique_job("monitored")
    result = pipewarden(
        run_args(job, ["touch", str(marker)]), shim_env(stub.url, tmp_path / "spool")
    )
    assert result.returncode == 0, result.err
    assert marker.exists()
    assert "monitor" in result.err
    assert "column y was dropped" in result.err
    assert by_type(stub.events) == ["START", "COMPLETE"]
    for event in stub.events:
        gate = event["run"]["facets"]["pipewarden_gate"]
        assert (gate["decision"], gate["mode"], gate["effective"]) == ("block", "monitor", "allow")


def test_an_allow_runs_the_command_without_gate_warnings(
    stub: StubCollector, tmp_path: Path
) -> None:
    stub.gate_answer = ALLOW
    job = unique_job("allowed")
    result = pipewarden(
        run_args(job, ["sh", "-c", "echo ran"]), shim_env(stub.url, tmp_path / "spool")
    )
    assert result.returncode == 0
    assert result.out == "ran\n"
    assert "gate" not in result.err
    assert by_type(stub.events) == ["START", "COMPLETE"]
    assert stub.events[1]["run"]["facets"]["pipewarden_gate"]["effective"] == "allow"


@pytest.mark.parametrize(
    ("status", "answer", "reason"),
    [
        (500, {"code": 500, "message": "boom"}, "HTTP 500"),
        (404, {"code": 404, "message": "no gate"}, "no gate"),
        (200, ["not", "a", "decision"], "could not be read"),
    ],
    ids=["server-error", "no-endpoint", "unreadable"],
)
def test_a_gate_that_cannot_decide_fails_open_and_says_so(
    stub: StubCollector, tmp_path: Path, status: int, answer: Any, reason: str
) -> None:
    stub.gate_status = status
    stub.gate_answer = answer
    marker = tmp_path / "started"
    job = unique_job("failopen")
    result = pipewarden(
        run_args(job, ["touch", str(marker)]), shim_env(stub.url, tmp_path / "spool")
    )
    assert result.returncode == 0
    assert marker.exists()
    assert reason in result.err
    assert by_type(stub.events) == ["START", "COMPLETE"]
    gate = stub.events[1]["run"]["facets"]["pipewarden_gate"]
    assert (gate["status"], gate["effective"]) == ("unavailable", "allow")
    assert reason in gate["reason"]


def test_a_gate_that_does_not_answer_in_time_fails_open_quickly(
    stub: StubCollector, tmp_path: Path
) -> None:
    stub.gate_answer = ENFORCE_BLOCK  # too late to count
    stub.gate_delay = 2.0
    marker = tmp_path / "started"
    spool = tmp_path / "spool"
    job = unique_job("slowgate")
    result = pipewarden(
        run_args(job, ["touch", str(marker)]),
        shim_env(stub.url, spool, PIPEWARDEN_CLIENT_TIMEOUT="0.3"),
    )
    assert result.returncode == 0
    assert marker.exists()
    assert result.seconds < 1.8, "the shim waited for the gate beyond its time box"
    assert "could not be asked" in result.err
    # after a timeout the client stops trying: the run's events wait in the spool
    events = [json.loads(path.read_bytes()) for path in spooled(spool)]
    assert by_type(events) == ["START", "COMPLETE"]
    gate = events[1]["run"]["facets"]["pipewarden_gate"]
    assert (gate["status"], gate["effective"]) == ("unavailable", "allow")
    assert "no answer in time" in gate["reason"]


@pytest.mark.parametrize(
    "variable", ["PIPEWARDEN_API_KEY", "OPENLINEAGE_API_KEY"], ids=["pipewarden", "openlineage"]
)
def test_the_api_key_is_sent_as_a_bearer_token_on_every_call(
    stub: StubCollector, tmp_path: Path, variable: str
) -> None:
    job = unique_job("apikey")
    env = shim_env(stub.url, tmp_path / "spool", **{variable: "k3y-for-tests"})
    result = pipewarden(run_args(job, ["true"]), env)
    assert result.returncode == 0
    assert len(stub.gate_requests) == 1
    assert len(stub.events) == 2
    assert stub.authorizations == ["Bearer k3y-for-tests"] * 3
