"""A store holding a long history, built in-process, for measuring reads over it.

Stores `harness.history` (START and COMPLETE of daily runs with SQL, inputs, outputs and row
counts) through the collector's own `store_group` in large groups, much faster than over
HTTP, and marks every run judged (and counted in the run totals, as the evaluator does as it
judges) so a collector started on it has nothing to catch up on.

Judging a run also stores the column lineage parsed from its SQL (`parsed.store_sql_lineage`),
each run replacing the edges of the run before it: the seed runs that same step once per
job, on its newest finished run, which leaves the column edges a live collector would.

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
from sqlalchemy import Engine, func, insert, select, update

from collector.ingest import prepare, store_group
from collector.lineage import parsed
from collector.store import tables
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import run_totals, runs

GROUP = 10_000  # events: five runs of each of 1,000 jobs; larger groups store faster


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
    _parse_sql(engine, make_engine(database_url))
    with engine.begin() as connection:
        connection.execute(update(runs).values(detected_at=datetime.now(UTC)))
        finished = select(runs.c.job_id, runs.c.state, func.count()).where(runs.c.state_rank == 2)
        connection.execute(  # the totals the evaluator keeps as it judges each run
            insert(run_totals).from_select(
                ["job_id", "state", "runs"], finished.group_by(runs.c.job_id, runs.c.state)
            )
        )
    engine.dispose()
    if progress:
        print(file=sys.stderr)
    return stored


def _parse_sql(writer: Engine, reader: Engine) -> None:
    """The column lineage of each job's newest finished run, as judging it stores it.

    All of it written in one transaction; the reads go through `reader` beside it.
    """
    newest = (
        select(runs.c.job_id, func.max(runs.c.created_at).label("created_at"))
        .where(runs.c.state_rank == 2)
        .group_by(runs.c.job_id)
        .subquery()
    )
    query = (
        select(runs, tables.jobs.c.namespace, tables.jobs.c.name.label("job_name"))
        .join(tables.jobs)
        .join(
            newest,
            (newest.c.job_id == runs.c.job_id) & (newest.c.created_at == runs.c.created_at),
        )
        .where(runs.c.state_rank == 2)
    )
    with reader.connect() as connection:
        latest = connection.execute(query).all()
    with writer.begin() as writing:
        for run in latest:
            parsed.store_sql_lineage(reader, lambda step: step(writing), run)
    reader.dispose()


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
