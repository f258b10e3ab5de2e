"""What every benchmark needs: free ports, servers started and stopped, a keep-alive load
generator, the collector's memory, and OpenLineage events of a realistic size.

The load generator is plain asyncio over raw HTTP/1.1 keep-alive connections (no client
library on the hot path), so the same generator drives the reference and pipewarden and
costs both the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

PRODUCER = "https://github.com/pipewarden/pipewarden/benchmarks"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SQL = (
    "INSERT INTO mart.daily_revenue (day, region, revenue, orders)\n"
    "SELECT o.day, c.region, SUM(o.amount) AS revenue, COUNT(*) AS orders\n"
    "FROM staging.orders AS o JOIN staging.customers AS c ON c.id = o.customer_id\n"
    "WHERE o.status = 'paid' GROUP BY o.day, c.region"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(command: Sequence[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    """A server subprocess answering `/healthz` on `port`; yields its pid."""
    process = subprocess.Popen(
        list(command),
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited {process.returncode} at start")
            with contextlib.suppress(OSError, urllib.error.URLError):
                url = f"http://127.0.0.1:{port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def collector_command(port: int) -> list[str]:
    return [sys.executable, "-m", "collector.cli", "serve", "--port", str(port)]


def collector_env(folder: Path, database_url: str | None = None) -> dict[str, str]:
    """A collector on its own store with the default policy (every job in monitor mode)."""
    policy = folder / "pipewarden.toml"
    policy.write_text("")
    return {
        "PIPEWARDEN_DATABASE_URL": database_url or f"sqlite:///{folder}/bench.db",
        "PIPEWARDEN_LOG_LEVEL": "warning",
        "PIPEWARDEN_POLICY": str(policy),
    }


def rss_megabytes(pid: int) -> float:
    """Resident memory of a process and its children (the collector's background process;
    Linux /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return _own_rss(pid) + sum(_own_rss(int(kid)) for kid in kids)


def _own_rss(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:  # ended meanwhile
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_events(
    job: int, run: int, start: datetime, *, minutes: float = 7.0, rows: int = 1000
) -> list[dict[str, Any]]:
    """START and COMPLETE of one run (about 1 KB each): SQL, inputs, outputs, row counts."""
    run_id = str(uuid.uuid4())
    job_ref = {"namespace": "bench", "name": f"job_{job:04d}"}
    inputs = [
        {"namespace": "postgres://warehouse:5432", "name": f"staging.orders_{job % 97}"},
        {"namespace": "postgres://warehouse:5432", "name": f"staging.customers_{job % 89}"},
    ]
    output = {
        "namespace": "postgres://warehouse:5432",
        "name": f"mart.daily_revenue_{job:04d}",
        "facets": {},
        "outputFacets": {
            "outputStatistics": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json",
                "rowCount": rows + run % 17,
                "size": (rows + run % 17) * 48,
            }
        },
    }
    sql = {
        "sql": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json",
            "query": SQL,
            "dialect": "postgres",
        }
    }
    end = start + timedelta(minutes=minutes + (run % 5) * 0.3)
    return [
        {
            "eventType": kind,
            "eventTime": at.isoformat(),
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
            "run": {"runId": run_id},
            "job": {**job_ref, "facets": sql},
            "inputs": inputs,
            "outputs": [output] if kind == "COMPLETE" else [],
        }
        for kind, at in (("START", start), ("COMPLETE", end))
    ]


def history(jobs: int, runs_per_job: int, end: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Daily runs of `jobs` jobs ending at `end` (default now), oldest first."""
    last = (end or datetime.now(UTC)).replace(microsecond=0)
    first = last - timedelta(days=runs_per_job)
    for run in range(runs_per_job):
        for job in range(jobs):
            start = first + timedelta(days=run, minutes=job % 60)
            yield from run_events(job, run, start)


@dataclass
class Load:
    """What a load run measured."""

    sent: int
    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    def summary(self) -> str:
        median = statistics.median(self.latencies) * 1000 if self.latencies else 0.0
        p99 = self.percentile(0.99) * 1000
        return (
            f"{self.rate:9.0f} req/s  median {median:6.1f} ms  p99 {p99:6.1f} ms"
            f"  statuses {dict(sorted(self.statuses.items()))}"
        )


def request_bytes(method: str, path: str, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _load(port: int, requests: Sequence[bytes], connections: int) -> Load:
    queue = iter(requests)
    load = Load(sent=len(requests), seconds=0.0)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                load.latencies.append(time.perf_counter() - started)
                load.statuses[status] = load.statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    load.seconds = time.perf_counter() - started
    return load


def load(port: int, requests: Sequence[bytes], connections: int) -> Load:
    """Send every request over `connections` keep-alive connections, as fast as answered."""
    return asyncio.run(_load(port, requests, connections))


def post_requests(path: str, documents: Sequence[Any]) -> list[bytes]:
    return [request_bytes("POST", path, orjson.dumps(document)) for document in documents]
