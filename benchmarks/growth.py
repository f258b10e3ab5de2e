"""How the collector's costs grow with the history it holds: 10k, 100k and 1M stored runs.

For each size, a SQLite store of 1,000 jobs with size / 1,000 daily runs each (`seed.py`:
START and COMPLETE with SQL, two inputs, an output with a row count, every run judged),
then a real `pipewarden serve` on it (retention off), measuring the same things the same
way at every size:

- ingest: a burst of new single events (the next daily run of every job, START and
  COMPLETE, over 32 connections), req/s, then how fast the evaluator judged those runs;
- judge: from posting a run's COMPLETE to the run being judged (the evaluator), one run
  at a time, read from the store's `runs.detected_at`;
- gate: `GET /api/v1/gates/{ns}/{job}` from 8 concurrent callers, p50 / p99;
- lineage and column lineage around a job at depth 10, one read at a time, p50 / p99;
- `/metrics`: one scrape, the median of three;
- tick: the evaluator's periodic checks (overruns, missed runs), in-process after the
  server stopped;
- the store's file size.

Prints one table (size → figures) and each figure's ratio to the smallest size's.

    python benchmarks/growth.py                                  # 10k, 100k, 1M runs
    python benchmarks/growth.py --sizes 10000,100000             # a quicker run
    python benchmarks/growth.py --keep /tmp/stores               # seed once, reuse after

Seeding runs 1,000 to 3,500 events/s, as the machine's load allows: 1M runs (2M events)
take 10 to 35 minutes and 5.8 GB of disk (twice that while a copy is measured).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import harness
import seed

from collector.detection import Detection
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from gates.policy import Policy

JOBS = 1000
BURST_CONNECTIONS = 32
GATE_CALLERS = 8
GATE_CALLS = 1000
LINEAGE_READS = 50
SCRAPES = 3
JUDGED_RUNS = 20
# What waits, each read by its partial index: events stored and not derived yet (runs come
# from them), and finished runs the evaluator has not judged.
WAITING = (
    "SELECT (SELECT count(*) FROM events WHERE NOT derived)"
    " + (SELECT count(*) FROM runs WHERE state_rank = 2 AND detected_at IS NULL)"
)

# (key, column title, unit shown, format)
FIGURES = (
    ("store_mb", "store", "MB", "{:,.0f}"),
    ("ingest_rps", "ingest", "req/s", "{:,.0f}"),
    ("judge_backlog_rps", "judge burst", "runs/s", "{:,.0f}"),
    ("judge_p50_ms", "judge p50", "ms", "{:,.0f}"),
    ("judge_max_ms", "judge max", "ms", "{:,.0f}"),
    ("gate_p50_ms", "gate p50", "ms", "{:,.1f}"),
    ("gate_p99_ms", "gate p99", "ms", "{:,.1f}"),
    ("lineage_p50_ms", "lineage p50", "ms", "{:,.1f}"),
    ("lineage_p99_ms", "lineage p99", "ms", "{:,.1f}"),
    ("column_p50_ms", "columns p50", "ms", "{:,.1f}"),
    ("column_p99_ms", "columns p99", "ms", "{:,.1f}"),
    ("metrics_ms", "/metrics", "ms", "{:,.0f}"),
    ("tick_ms", "tick", "ms", "{:,.0f}"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="runs stored, comma-separated (each a multiple of --jobs)",
    )
    parser.add_argument("--jobs", type=int, default=JOBS, help="jobs, the same at every size")
    parser.add_argument(
        "--keep",
        type=Path,
        help="a folder keeping the seeded stores (growth-SIZE.db): made once, then reused;"
        " each measurement runs on a copy",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    if any(size % options.jobs or size <= 0 for size in sizes):
        parser.error(f"each size must be a positive multiple of --jobs ({options.jobs})")

    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="growth-") as scratch:
        for size in sizes:
            print(f"== {size:,} runs ({options.jobs:,} jobs x {size // options.jobs:,} runs)")
            folder = Path(scratch) / str(size)
            folder.mkdir()
            store = folder / "bench.db"
            seeded_mb = _store(store, size, options.jobs, options.keep)
            results[size] = {"store_mb": seeded_mb, **_measure(folder, store, options.jobs)}
            shutil.rmtree(folder)
            print(_table(results))
    if options.json:
        options.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    print()
    print(_table(results))
    print()
    print(_ratios(results))
    return 0


# --- the store ------------------------------------------------------------------------


def _store(path: Path, size: int, jobs: int, keep: Path | None) -> float:
    """A seeded store at `path`, a copy of the kept one or seeded now (and kept), at the
    newest revision; its size as seeded, in MB (migrating a kept one may leave it larger)."""
    kept = keep / f"growth-{size}.db" if keep else None
    if kept is not None and kept.exists():
        print(f"store: copying {kept}")
        shutil.copy(kept, path)
        seeded_mb = path.stat().st_size / 1e6
        # A store kept from an older revision is brought up to date here, not by the server
        # (which would not answer within the harness's minute on a large one).
        started = time.perf_counter()
        engine = make_engine(f"sqlite:///{path}", writer=True)
        upgrade(engine)
        engine.dispose()
        print(f"store: migrated in {time.perf_counter() - started:,.1f} s")
        return seeded_mb
    started = time.perf_counter()
    events = seed.seed(f"sqlite:///{path}", jobs, size // jobs, progress=True)
    print(f"store: {events:,} events seeded in {time.perf_counter() - started:,.0f} s")
    if kept is not None:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, kept)
    return path.stat().st_size / 1e6


def _latest_day(path: Path) -> datetime:
    """The start of the newest run of the first job: each job runs daily, `job % 60` minutes
    after it, and new runs continue that history."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        (latest,) = connection.execute(
            "SELECT max(started_at) FROM runs JOIN jobs ON jobs.id = runs.job_id"
            " WHERE jobs.namespace = 'bench' AND jobs.name = 'job_0000'"
        ).fetchone()
    return datetime.fromisoformat(latest).replace(tzinfo=UTC)


# --- measuring ------------------------------------------------------------------------


def _measure(folder: Path, store: Path, jobs: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    day = _latest_day(store) + timedelta(days=1)
    runs_per_job = _count(store, "SELECT count(*) FROM runs") // jobs
    port = harness.free_port()
    env = harness.collector_env(folder)
    env["PIPEWARDEN_RETENTION_DAYS"] = "0"  # the history reaches back years
    rng = random.Random(7)
    names = [f"job_{n:04d}" for n in range(jobs)]
    with harness.server(harness.collector_command(port), port, env):
        # the next daily run of every job
        burst = [
            event
            for job in range(jobs)
            for event in harness.run_events(job, runs_per_job, day + timedelta(minutes=job % 60))
        ]
        loaded = harness.load(
            port, harness.post_requests("/api/v1/lineage", burst), BURST_CONNECTIONS
        )
        _check(loaded, "ingest")
        figures["ingest_rps"] = loaded.rate
        print(f"ingest: {loaded.summary()}")
        started = time.perf_counter()
        _wait_until_judged(store)
        figures["judge_backlog_rps"] = jobs / (time.perf_counter() - started + loaded.seconds)
        print(f"judged the burst's {jobs:,} runs: {figures['judge_backlog_rps']:,.0f} runs/s")

        waits = _judge_one_at_a_time(port, store, day + timedelta(days=1), runs_per_job + 1)
        figures["judge_p50_ms"] = statistics.median(waits) * 1000
        figures["judge_max_ms"] = max(waits) * 1000
        print(f"judge one run: median {figures['judge_p50_ms']:.0f} ms, max {max(waits):.3f} s")

        gate_paths = [f"/api/v1/gates/bench/{rng.choice(names)}" for _ in range(GATE_CALLS)]
        gates = harness.load(port, _gets(gate_paths), GATE_CALLERS)
        _check(gates, "gates")
        figures["gate_p50_ms"], figures["gate_p99_ms"] = _p50_p99(gates)
        print(f"gates, {GATE_CALLERS} callers: {gates.summary()}")
        for key, label, path in (
            ("lineage", "lineage depth 10", "/api/v1/lineage?nodeId=job:bench:{job}&depth=10"),
            (
                "column",
                "column lineage depth 10",
                "/api/v1/column-lineage?nodeId=job:bench:{job}&depth=10",
            ),
        ):
            paths = [path.format(job=rng.choice(names)) for _ in range(LINEAGE_READS)]
            reads = harness.load(port, _gets(paths), 1)
            _check(reads, label)
            figures[f"{key}_p50_ms"], figures[f"{key}_p99_ms"] = _p50_p99(reads)
            print(f"{label}: {reads.summary()}")

        scrapes = [_timed(lambda: _scrape(port)) for _ in range(SCRAPES)]
        figures["metrics_ms"] = statistics.median(scrapes) * 1000
        print(f"/metrics: {', '.join(f'{s * 1000:,.0f}' for s in scrapes)} ms")
    figures["tick_ms"] = _tick(store) * 1000
    print(f"tick (overruns and missed runs, in-process): {figures['tick_ms']:,.0f} ms")
    return figures


def _judge_one_at_a_time(port: int, store: Path, day: datetime, run: int) -> list[float]:
    """Seconds from posting each run's COMPLETE until the store says the run is judged."""
    waits = []
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as connection:
        for job in range(JUDGED_RUNS):
            start, complete = harness.run_events(job, run, day + timedelta(minutes=job % 60))
            _post(port, start)
            uuid = complete["run"]["runId"].replace("-", "")  # type: ignore[index]
            started = time.perf_counter()
            _post(port, complete)
            deadline = started + 120
            while (
                connection.execute(
                    "SELECT 1 FROM runs WHERE uuid = ? AND detected_at IS NOT NULL", (uuid,)
                ).fetchone()
                is None
            ):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"run {uuid} was not judged within 120 s")
                time.sleep(0.002)
            waits.append(time.perf_counter() - started)
    return waits


def _tick(store: Path) -> float:
    """Seconds the evaluator's periodic checks take over the store (no server running)."""
    engine = make_engine(f"sqlite:///{store}")

    def write(work: Callable[[Any], Any]) -> Any:
        with engine.begin() as connection:
            return work(connection)

    detection = Detection(engine, write, lambda: Policy())
    now = datetime.now(UTC)
    started = time.perf_counter()
    detection.check_overruns(now)
    detection.check_freshness(now)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def _post(port: int, document: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/lineage",
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        if answer.status != 201:
            raise RuntimeError(f"ingest answered {answer.status}")


def _scrape(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=600) as answer:
        answer.read()


def _timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _wait_until_judged(store: Path, timeout: float = 3600) -> None:
    """Until every event stored is derived and every finished run judged."""
    deadline = time.monotonic() + timeout
    while _count(store, WAITING):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the runs were not judged within {timeout} s")
        time.sleep(0.02)


def _count(store: Path, query: str) -> int:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as connection:
        return int(connection.execute(query).fetchone()[0])


def _gets(paths: list[str]) -> list[bytes]:
    return [harness.request_bytes("GET", path) for path in paths]


def _p50_p99(load: harness.Load) -> tuple[float, float]:
    return statistics.median(load.latencies) * 1000, load.percentile(0.99) * 1000


def _check(load: harness.Load, what: str) -> None:
    if not all(200 <= status < 300 for status in load.statuses):
        raise RuntimeError(f"{what}: answers {load.statuses}")


# --- the tables -----------------------------------------------------------------------


def _table(results: dict[int, dict[str, float]]) -> str:
    head = ["runs stored"] + [f"{title} ({unit})" for _, title, unit, _ in FIGURES]
    rows = [
        [f"{size:,}"] + [fmt.format(figures[key]) for key, _, _, fmt in FIGURES]
        for size, figures in results.items()
    ]
    return _markdown(head, rows)


def _ratios(results: dict[int, dict[str, float]]) -> str:
    base_size = min(results)
    base = results[base_size]
    head = [f"vs. {base_size:,}"] + [title for _, title, _, _ in FIGURES]
    rows = [
        [f"{size:,}"]
        + [f"{figures[key] / base[key]:.2f}" if base[key] else "-" for key, *_ in FIGURES]
        for size, figures in results.items()
    ]
    return _markdown(head, rows)


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
