"""`pipewarden serve` on PostgreSQL derives and judges in a second process.

A real `serve` on a real PostgreSQL: the events it acknowledges are derived and their runs
judged by its background process (the serving process does neither), a read right after
an event shows it, a killed background process is replaced and the new one takes over, and
a graceful stop ends both processes.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests import postgres
from tests.events import PRODUCER, run_event
from tests.load import Collector, serving

WAIT_S = 60.0
SQL_FACET = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json"


@pytest.fixture
def collector(postgres_server: str, tmp_path: Path) -> Iterator[Collector]:
    postgres.reset_database(postgres_server)
    with serving(Collector(postgres_server, tmp_path, PIPEWARDEN_EVALUATOR_INTERVAL="0.2")) as c:
        yield c


def background_pids(collector: Collector) -> list[int]:
    """The serving process's children started by multiprocessing's spawn."""
    assert collector.process is not None
    pid = collector.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child) for child in children if b"spawn_main" in _read(Path(f"/proc/{child}/cmdline"))
    ]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:  # the process ended meanwhile
        return b""


def one_run(collector: Collector, job: str, sql: str = "SELECT 1") -> str:
    """START and COMPLETE of a new run of `job` running `sql`; its id."""
    run_id = str(uuid.uuid4())
    facets = {"sql": {"_producer": PRODUCER, "_schemaURL": SQL_FACET, "query": sql}}
    for kind, at in (("START", "2024-05-01T02:00:00Z"), ("COMPLETE", "2024-05-01T02:07:00Z")):
        event = run_event(kind, run_id=run_id, job=job, event_time=at, job_facets=facets)
        answer = httpx.post(f"{collector.url}/api/v1/lineage", json=event, timeout=10)
        assert answer.status_code == 201, answer.text
    return run_id


def run_state(collector: Collector, run_id: str) -> str:
    answer = httpx.get(f"{collector.url}/api/v1/jobs/runs/{run_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    state: str = answer.json()["state"]
    return state


def metric(collector: Collector, name: str) -> float:
    metrics = httpx.get(f"{collector.url}/metrics", timeout=10).text
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def runs_awaiting_judgement(collector: Collector) -> float:
    return metric(collector, "pipewarden_runs_awaiting_judgement")


def wait_for(condition: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT_S:g} s: {condition}"
        time.sleep(0.05)


@pytest.mark.e2e
def test_a_second_process_derives_and_judges_what_serve_stores(collector: Collector) -> None:
    (first,) = background_pids(collector)
    run_id = one_run(collector, "orders_daily")
    assert run_state(collector, run_id) == "COMPLETED"  # the read waited for the derivation
    wait_for("the run is judged", lambda: runs_awaiting_judgement(collector) == 0)
    health = httpx.get(f"{collector.url}/healthz", timeout=10).json()
    assert health["events_awaiting_derivation"] == 0

    os.kill(first, signal.SIGKILL)
    wait_for("another background process", lambda: background_pids(collector) not in ([], [first]))
    run_id = one_run(collector, "orders_hourly")
    assert run_state(collector, run_id) == "COMPLETED"
    wait_for("the new run is judged", lambda: runs_awaiting_judgement(collector) == 0)
    assert "starting another" in collector.output()

    # What the background process counts shows in the serving process's /metrics.
    failures = metric(collector, "pipewarden_sql_parse_failures_total")
    one_run(collector, "broken_sql", sql="INSERT INTO t\nSELECT (a FROM s;")
    wait_for(
        "the SQL parse failure is counted",
        lambda: metric(collector, "pipewarden_sql_parse_failures_total") == failures + 1,
    )

    (second,) = background_pids(collector)
    assert collector.stop() == 0, collector.output()
    assert not Path(f"/proc/{second}").exists()  # stopped and reaped with the collector
