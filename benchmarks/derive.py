"""Event derivation against the raw event INSERT alone, measured in one run.

Prepares N events of `harness.history` (START and COMPLETE of daily runs: SQL job facet,
two inputs, an output with outputStatistics), then stores them in groups of `--group`
events, one transaction per group as the writer does:
- reference: the raw event rows alone, one executemany INSERT per group (nothing derived);
- pipewarden: `collector.ingest.store_group` per group (`--mode event`: `store` for each
  event in turn, still one transaction per group).
Each side gets a fresh store: SQLite in a temporary folder, or the scratch PostgreSQL
database of `--database-url`, whose pipewarden tables are DROPPED first. Both are measured
`--rounds` times, alternately, and the best rates are printed with their ratio. Validation
(`prepare`) is left out of both: only the store is measured.

    python benchmarks/derive.py [--events 4000] [--group 32] [--mode group|event]
                                [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import harness
import orjson
from sqlalchemy import Connection, Engine, insert, text

from collector import ingest
from collector.ingest import Incoming, prepare
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import events, metadata

Store = Callable[[Connection, Sequence[Incoming], datetime], object]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", choices=["group", "event"], default="group")
    parser.add_argument(
        "--database-url", help="a scratch PostgreSQL database to measure (its tables are dropped)"
    )
    options = parser.parse_args()
    documents = list(harness.history(jobs=200, runs_per_job=options.events // 400 + 1))
    items = [prepare(document, orjson.dumps(document)) for document in documents[: options.events]]
    derive = _store_groups if options.mode == "group" else _store_each
    reference, pipewarden = [], []
    for round_number in range(options.rounds):
        reference.append(_measure(options.database_url, items, options.group, _insert_raw))
        pipewarden.append(_measure(options.database_url, items, options.group, derive))
        print(
            f"round {round_number + 1}: reference {reference[-1]:8.0f} events/s"
            f"  pipewarden ({options.mode}) {pipewarden[-1]:8.0f} events/s"
        )
    best_reference, best_pipewarden = max(reference), max(pipewarden)
    print(
        f"events {len(items)} in groups of {options.group}, {options.rounds} rounds:"
        f" pipewarden {best_pipewarden:.0f}/s, raw insert {best_reference:.0f}/s,"
        f" ratio {best_pipewarden / best_reference:.3f}"
    )
    return 0


def _measure(url: str | None, items: list[Incoming], group: int, store: Store) -> float:
    """Events per second storing `items` in groups into a fresh store."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(url or f"sqlite:///{Path(folder) / 'derive.db'}", writer=True)
        try:
            _empty(engine)
            upgrade(engine)
            received_at = datetime.now(UTC)
            started = time.perf_counter()
            for first in range(0, len(items), group):
                with engine.begin() as connection:
                    store(connection, items[first : first + group], received_at)
            return len(items) / (time.perf_counter() - started)
        finally:
            engine.dispose()


def _empty(engine: Engine) -> None:
    """Drop what an earlier round left in a PostgreSQL store (SQLite starts empty)."""
    if engine.dialect.name == "postgresql":
        metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _insert_raw(connection: Connection, items: Sequence[Incoming], received_at: datetime) -> None:
    rows = [ingest.event_row(item, received_at, derived=True) for item in items]
    connection.execute(insert(events), rows)


def _store_groups(connection: Connection, items: Sequence[Incoming], received_at: datetime) -> None:
    ingest.store_group(connection, items, received_at)


def _store_each(connection: Connection, items: Sequence[Incoming], received_at: datetime) -> None:
    for item in items:
        ingest.store(connection, item, received_at)


if __name__ == "__main__":
    sys.exit(main())
