"""A store holding a long history, built in-process, for measuring reads over it.

Stores `harness.history` (START and COMPLETE of daily runs with SQL, inputs, outputs and row
counts) through the collector's own `store_group` in large groups, much faster than over
HTTP, and marks every run judged so a collector started on it has nothing to catch up on.

    python benchmarks/seed.py PATH [--jobs 1000] [--runs 100]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import harness
from sqlalchemy import update

from collector.ingest import prepare, store_group
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import runs

GROUP = 2000


def seed(database_url: str, jobs: int, runs_per_job: int, progress: bool = False) -> int:
    """Store `runs_per_job` runs of each of `jobs` jobs; the number of events stored."""
    engine = make_engine(database_url, writer=True)
    upgrade(engine)
    stored = 0
    started = time.perf_counter()
    history = harness.history(jobs, runs_per_job)
    while group := list(itertools.islice(history, GROUP)):
        with engine.begin() as connection:
            store_group(connection, [prepare(event) for event in group], datetime.now(UTC))
        stored += len(group)
        if progress:
            rate = stored / (time.perf_counter() - started)
            print(f"\r{stored:,} events stored ({rate:,.0f}/s)", end="", file=sys.stderr)
    with engine.begin() as connection:
        connection.execute(update(runs).values(detected_at=datetime.now(UTC)))
    engine.dispose()
    if progress:
        print(file=sys.stderr)
    return stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the SQLite file to create")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100, help="runs per job")
    options = parser.parse_args()
    if options.path.exists():
        parser.error(f"{options.path} exists; seed a new file")
    seed(f"sqlite:///{options.path}", options.jobs, options.runs, progress=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
