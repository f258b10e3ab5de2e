"""Batch ingestion of a large history, then gates and lineage reads over it, in one run.

Starts `benchmarks/reference_app.py` and a real `pipewarden serve` (SQLite in a temporary
folder, or `--database-url`), then:

1. sends the same history — by default 100,000 runs of 1,000 jobs, 200,000 events with SQL,
   inputs, outputs and row counts — to both through `/api/v1/lineage/batch` (batches of
   `--batch` events over `--connections` connections) and prints both rates, the ratio and
   pipewarden's peak memory (target: ≥ 20,000 events/s, RSS < 300 MB);
2. waits until the collector has derived and judged everything it acknowledged;
3. asks the gate (`GET /api/v1/gates/{ns}/{job}`, random jobs, 8 concurrent callers) and
   compares with the reference's bare `GET /healthz` at the same concurrency (target: p99
   ≤ 25 ms), each after 50 calls of warm-up;
4. reads the lineage graph (`GET /api/v1/lineage`, depth 10) and the column lineage around
   jobs, one after another (target: ≤ 100 ms each).

    python benchmarks/at_scale.py [--jobs 1000] [--runs 100] [--batch 1000] [--connections 4]
    python benchmarks/at_scale.py --ingest-only      # step 1 only
    python benchmarks/at_scale.py --store STORE.db   # steps 3 and 4 only, over a seed.py store
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import harness
from prometheus_client.parser import text_string_to_metric_families

BATCH_TARGET = 20_000
GATE_P99_TARGET_MS = 25.0
LINEAGE_TARGET_MS = 100.0
RSS_TARGET_MB = 300.0
# Calls made before each measured series: the first calls after a start compile statements
# and open connections (8 gates at once took 40-50 ms, against 14 ms after), a cost paid
# once per process, not per decision.
WARM_UP = 50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100, help="runs per job")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch request")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--gate-calls", type=int, default=2000)
    parser.add_argument("--database-url", help="a PostgreSQL URL to measure instead of SQLite")
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="measure the batch ingestion and memory only, without waiting for the judging"
        " (100k runs take the evaluator half an hour) and the reads",
    )
    parser.add_argument(
        "--store",
        type=Path,
        help="a SQLite store made by seed.py with the same --jobs: skip the ingestion and"
        " measure the reads over a copy of it",
    )
    options = parser.parse_args()

    port = harness.free_port()
    command = [sys.executable, str(Path(__file__).with_name("reference_app.py")), str(port)]
    events: list[dict[str, object]] = []
    with harness.server(command, port):
        if options.store is None:
            events = list(harness.history(options.jobs, options.runs))
            print(f"history: {len(events)} events, {options.jobs} jobs x {options.runs} runs")
            reference = harness.load(port, _batches(events, options.batch), options.connections)
            reference_rate = len(events) / reference.seconds
        harness.load(port, _gets("/healthz", WARM_UP), 8)
        bare = harness.load(port, _gets("/healthz", options.gate_calls), 8)

    ok = True
    with tempfile.TemporaryDirectory() as folder:
        port = harness.free_port()
        env = harness.collector_env(Path(folder), options.database_url)
        env["PIPEWARDEN_RETENTION_DAYS"] = "0"  # the history reaches back further than 90 days
        if options.store is not None:
            shutil.copy(options.store, Path(folder) / "bench.db")
        with harness.server(harness.collector_command(port), port, env) as pid:
            if events:
                ok &= _ingest(port, pid, events, options, reference_rate)
            if not options.ingest_only:
                ok &= _reads(port, options, bare)
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


def _batches(events: list[dict[str, object]], size: int) -> list[bytes]:
    batches = [events[i : i + size] for i in range(0, len(events), size)]
    return harness.post_requests("/api/v1/lineage/batch", batches)


def _ingest(
    port: int,
    pid: int,
    events: list[dict[str, object]],
    options: argparse.Namespace,
    reference_rate: float,
) -> bool:
    """Batch ingestion's rate and peak memory, then the wait until all is judged."""
    peak = _PeakMemory(pid)
    with peak:
        loaded = harness.load(port, _batches(events, options.batch), options.connections)
    rate = len(events) / loaded.seconds
    print(
        f"batch ingestion: pipewarden {rate:,.0f} events/s, reference"
        f" {reference_rate:,.0f} events/s, ratio {rate / reference_rate:.2f};"
        f" statuses {loaded.statuses}; peak RSS {peak.megabytes:.0f} MB"
        f" (targets: >= {BATCH_TARGET:,} events/s, < {RSS_TARGET_MB:.0f} MB)"
    )
    if not options.ingest_only:
        started = time.perf_counter()
        _wait_until_judged(port, options.jobs * options.runs)
        print(f"derived and judged everything {time.perf_counter() - started:.1f} s later")
    return rate >= BATCH_TARGET and peak.megabytes < RSS_TARGET_MB and set(loaded.statuses) == {200}


def _reads(port: int, options: argparse.Namespace, bare: harness.Load) -> bool:
    """Gates from 8 callers against the reference's bare endpoint, then lineage reads."""
    ok = True
    names = [f"job_{n:04d}" for n in range(options.jobs)]
    rng = random.Random(7)
    gate_paths = [f"/api/v1/gates/bench/{rng.choice(names)}" for _ in range(options.gate_calls)]
    harness.load(port, _gets_each(gate_paths[:WARM_UP]), 8)
    gates = harness.load(port, _gets_each(gate_paths), 8)
    p99 = gates.percentile(0.99) * 1000
    print(f"gates, 8 callers:    {gates.summary()}")
    print(f"reference /healthz:  {bare.summary()}")
    print(f"gate p99 {p99:.1f} ms (target <= {GATE_P99_TARGET_MS} ms)")
    ok &= p99 <= GATE_P99_TARGET_MS and set(gates.statuses) == {200}
    for label, path in (
        ("lineage depth 10", "/api/v1/lineage?nodeId=job:bench:{job}&depth=10"),
        ("column lineage", "/api/v1/column-lineage?nodeId=job:bench:{job}&depth=10"),
    ):
        paths = [path.format(job=rng.choice(names)) for _ in range(50)]
        reads = harness.load(port, _gets_each(paths), 1)
        worst = reads.percentile(0.99) * 1000
        print(f"{label:<20} {reads.summary()}  (target <= {LINEAGE_TARGET_MS} ms)")
        ok &= worst <= LINEAGE_TARGET_MS and set(reads.statuses) == {200}
    return ok


def _gets(path: str, count: int) -> list[bytes]:
    return [harness.request_bytes("GET", path)] * count


def _gets_each(paths: list[str]) -> list[bytes]:
    return [harness.request_bytes("GET", path) for path in paths]


def _wait_until_judged(port: int, runs: int, timeout: float = 3600) -> None:
    """Until the collector's store holds every run, each judged by the detectors."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as answer:
            families = {f.name: f for f in text_string_to_metric_families(answer.read().decode())}
        finished = sum(sample.value for sample in families["pipewarden_runs"].samples)
        waiting = families["pipewarden_runs_awaiting_judgement"].samples[0].value
        if finished >= runs and waiting == 0:
            return
        time.sleep(2)
    raise RuntimeError(f"not everything was judged within {timeout} s")


class _PeakMemory:
    """The highest RSS of a process and its children while the block runs, every 0.1 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.megabytes = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.megabytes = max(self.megabytes, harness.rss_megabytes(self.pid))
            self._stop.wait(0.1)


if __name__ == "__main__":
    sys.exit(main())
