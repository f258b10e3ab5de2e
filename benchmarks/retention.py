"""Retention's cost: time per batch on a backfilled store, and ingestion's latency meanwhile.

Backfills a store through the real ingest path (validation, the single writer, derivation):
`--jobs` jobs, each `--per-day` runs a day for `--days` days, reading and writing a dataset
with a schema and row counts. The finished runs are then marked judged (what the evaluator
would have done). Then, in one run of the script:

1. reference: the latency of single events ingested one after another, the writer idle;
2. retention (`--retention-days`, default 90) prunes through the same writer, batch by
   batch, while the same single events keep being ingested; printed: rows removed, the time
   per batch (median, p95, max), and the ingestion latency during pruning against the
   reference (median and p99).

    python benchmarks/retention.py [--jobs 20] [--days 365] [--per-day 4] [--batch-size 100]
                                   [--database-url postgresql+psycopg://…]   (default: SQLite)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update

from collector.ingest import Incoming, prepare
from collector.retention import BATCH_SIZE, Retention
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import runs
from collector.writer import Writer

PRODUCER = "https://github.com/pipewarden/benchmarks"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
NOW = datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=4)
    parser.add_argument("--retention-days", type=int, default=90)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--probes", type=int, default=300, help="single events for the reference")
    parser.add_argument("--database-url")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{folder}/retention.db"
        engine = make_engine(url, writer=True)
        upgrade(engine)
        writer = Writer(engine)
        writer.start()
        try:
            _run(options, engine, writer)
        finally:
            writer.stop()
            engine.dispose()


def _run(options: argparse.Namespace, engine: Engine, writer: Writer) -> None:
    started = time.monotonic()
    stored = _backfill(writer, options.jobs, options.days, options.per_day)
    with engine.begin() as connection:
        connection.execute(update(runs).where(runs.c.state_rank == 2).values(detected_at=NOW))
    print(f"backfilled {stored} events in {time.monotonic() - started:.0f} s")

    reference = [_ingest_one(writer) for _ in range(options.probes)]
    retention = Retention(engine, writer.write_sync, options.retention_days, options.batch_size)
    counted_at = time.monotonic()
    expected = retention.count(NOW)
    print(f"dry run: {time.monotonic() - counted_at:.2f} s to count {expected.summary()}")

    batch_seconds: list[float] = []
    last = [time.monotonic()]

    def progress(_what: str, _n: int) -> None:
        now = time.monotonic()
        batch_seconds.append(now - last[0])
        last[0] = now

    done = threading.Event()
    result: list[Any] = []

    def prune() -> None:
        result.append(retention.prune(NOW, progress=progress))
        done.set()

    pruning_started = time.monotonic()
    threading.Thread(target=prune, daemon=True).start()
    during = []
    while not done.is_set():
        during.append(_ingest_one(writer))
    total = time.monotonic() - pruning_started
    removed = result[0]
    print(f"removed {removed.summary()}")
    print(
        f"{removed.batches} batches of at most {options.batch_size} in {total:.1f} s: "
        f"per batch median {_ms(statistics.median(batch_seconds))}, "
        f"p95 {_ms(_quantile(batch_seconds, 0.95))}, max {_ms(max(batch_seconds))}"
    )
    print(
        f"single-event ingestion, writer idle: median {_ms(statistics.median(reference))}, "
        f"p99 {_ms(_quantile(reference, 0.99))} ({len(reference)} events)"
    )
    print(
        f"single-event ingestion while pruning: median {_ms(statistics.median(during))}, "
        f"p99 {_ms(_quantile(during, 0.99))} ({len(during)} events); "
        f"p99 ratio {_quantile(during, 0.99) / _quantile(reference, 0.99):.1f}x"
    )


def _backfill(writer: Writer, jobs: int, days: int, per_day: int) -> int:
    """The history through the writer, in groups of about 2,000 events."""
    group: list[Incoming] = []
    stored = 0
    for day in range(days, 0, -1):
        for slot in range(per_day):
            start = NOW - timedelta(days=day) + timedelta(hours=slot * 24 / per_day)
            for job in range(jobs):
                group += _run_events(f"job_{job}", start, rows=1000 + day % 7)
        if len(group) >= 2000:
            stored += len(writer.submit_nowait(group).result())
            group = []
    if group:
        stored += len(writer.submit_nowait(group).result())
    return stored


def _run_events(job: str, start: datetime, rows: int) -> list[Incoming]:
    run_id = str(uuid.uuid4())
    source = {
        "namespace": "pg",
        "name": f"raw.{job}",
        "facets": {
            "schema": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/SchemaDatasetFacet.json",
                "fields": [{"name": "id", "type": "int"}, {"name": "amount", "type": "int"}],
            }
        },
    }
    target = {
        "namespace": "pg",
        "name": f"mart.{job}",
        "outputFacets": {
            "outputStatistics": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/OutputStatisticsOutputDatasetFacet.json",
                "rowCount": rows,
            }
        },
    }
    return [
        prepare(
            {
                "eventType": kind,
                "eventTime": at.isoformat(),
                "producer": PRODUCER,
                "schemaURL": RUN_EVENT,
                "run": {"runId": run_id},
                "job": {"namespace": "bench", "name": job},
                "inputs": [source],
                "outputs": [target],
            }
        )
        for kind, at in (("START", start), ("COMPLETE", start + timedelta(minutes=10)))
    ]


def _ingest_one(writer: Writer) -> float:
    """Seconds to have one fresh event committed."""
    event = _run_events("probe", datetime.now(UTC), rows=1)[0]
    started = time.monotonic()
    writer.submit_nowait([event]).result()
    return time.monotonic() - started


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    main()
