"""Retention: history older than `PIPEWARDEN_RETENTION_DAYS` is removed in small batches.

Age is event time, as everywhere in pipewarden: a run is as old as its latest event (its end,
once finished), a job or dataset event as its eventTime. The cutoff is that many days before
now. Each batch is its own short transaction, through the single writer on SQLite, so
ingestion waits for one batch at most; on PostgreSQL the evaluator's pass is claimed with an
advisory lock, so one collector prunes at a time (and two that do anyway split the rows).

What stays whatever its age: each job's latest run and latest completed run, the schema
version of each dataset in force at the cutoff and every later one, open findings, each
job's latest gate decisions (its readiness), and all the current state derived from the
history (jobs, datasets, their facets, column lineage, expected ranges).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text

from collector.maturity import WINDOW as DECISIONS_KEPT
from collector.store import prune

log = logging.getLogger(__name__)
T = TypeVar("T")
Write = Callable[[Callable[[Connection], T]], T]
Progress = Callable[[str, int], None]  # (what, how many one batch removed: runs, events, …)

BATCH_SIZE = 100  # per transaction: runs (each with ~4 rows of events and inputs) or rows
CHECK_EVERY = timedelta(hours=1)  # how often the evaluator looks for old history
BATCHES_PER_PASS = 20  # then the evaluator goes back to judging runs; the rest next tick
_RETENTION_LOCK = 7_316_240_203  # any fixed number: the advisory lock of retention


@dataclass(frozen=True)
class Removed:
    """What a retention pass removed (or, counted on a dry run, would remove)."""

    runs: int = 0
    run_events: int = 0
    run_io: int = 0
    assertions: int = 0
    other_events: int = 0
    schema_versions: int = 0
    findings: int = 0
    gate_decisions: int = 0
    batches: int = 0
    finished: bool = True  # False: the pass stopped at its batch budget, more is old

    def __add__(self, other: Removed) -> Removed:
        summed = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "finished"
        }
        return Removed(**summed, finished=self.finished and other.finished)

    @property
    def rows(self) -> int:
        return sum(
            getattr(self, f.name) for f in fields(self) if f.name not in ("batches", "finished")
        )

    @property
    def picked(self) -> int:
        """The rows picked by age; a run's events, inputs and results went along with it."""
        return (
            self.runs
            + self.other_events
            + self.schema_versions
            + self.findings
            + self.gate_decisions
        )

    def summary(self) -> str:
        return (
            f"runs {self.runs} (raw events {self.run_events}, inputs and outputs "
            f"{self.run_io}, quality results {self.assertions}), job and dataset events "
            f"{self.other_events}, schema versions {self.schema_versions}, closed findings "
            f"{self.findings}, gate decisions {self.gate_decisions}"
        )


class Retention:
    """Removes history older than `days` (0: keeps everything)."""

    def __init__(
        self,
        engine: Engine,
        write: Write[Any],
        days: int,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._engine = engine
        self._write = write
        self.days = days
        self._batch_size = batch_size
        self._due: datetime | None = None  # the evaluator's next look; None: at its first tick

    def cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.days)

    def run_due(self, now: datetime) -> Removed | None:
        """The evaluator's share: a bounded pass when one is due and no other collector runs it.

        Due at the first tick, then hourly, and at every tick while old history remains.
        """
        if self.days <= 0 or (self._due is not None and now < self._due):
            return None
        started = time.monotonic()
        try:
            with claimed(self._engine, wait=False) as mine:
                if not mine:
                    return None
                removed = self.prune(now, max_batches=BATCHES_PER_PASS)
        except Exception:  # the evaluator's other checks must go on; retried next tick
            log.exception("retention pass failed; retrying at the next tick")
            return None
        self._due = now + CHECK_EVERY if removed.finished else now
        if removed.rows:
            log.info(
                "retention (%d days) removed %s in %d batches, %.2f s",
                self.days,
                removed.summary(),
                removed.batches,
                time.monotonic() - started,
            )
        return removed

    def count(self, now: datetime) -> Removed:
        """What `prune` would remove now, removing nothing."""
        cutoff = self.cutoff(now)
        with self._engine.connect() as connection:
            old_runs = prune.count_runs(connection, cutoff)
            return Removed(
                runs=old_runs.runs,
                run_events=old_runs.events,
                run_io=old_runs.run_io,
                assertions=old_runs.assertions,
                other_events=prune.count_other_events(connection, cutoff),
                schema_versions=prune.count_schema_versions(connection, cutoff),
                findings=prune.count_findings(connection, cutoff),
                gate_decisions=prune.count_decisions(connection, cutoff, DECISIONS_KEPT),
            )

    def prune(
        self, now: datetime, max_batches: int | None = None, progress: Progress | None = None
    ) -> Removed:
        """Remove what is older than the cutoff, a batch per transaction, oldest first.

        Stops after `max_batches` (None: when nothing old is left). Safe to repeat, and to
        run on two collectors at once: what is already gone is not counted again.
        """
        cutoff, size = self.cutoff(now), self._batch_size
        steps: list[tuple[str, Callable[[Connection], Removed]]] = [
            ("runs", lambda c: _runs_removed(prune.remove_runs(c, cutoff, size))),
            ("events", lambda c: Removed(other_events=prune.remove_other_events(c, cutoff, size))),
            (
                "schema versions",
                lambda c: Removed(schema_versions=prune.remove_schema_versions(c, cutoff, size)),
            ),
            ("findings", lambda c: Removed(findings=prune.remove_findings(c, cutoff, size))),
            (
                "gate decisions",
                lambda c: Removed(
                    gate_decisions=prune.remove_decisions(c, cutoff, DECISIONS_KEPT, size)
                ),
            ),
        ]
        total = Removed()
        for what, step in steps:
            while True:
                if max_batches is not None and total.batches >= max_batches:
                    return Removed(finished=False) + total
                batch = self._write(step)
                total += Removed(batches=1) + batch
                picked = batch.picked
                if progress is not None:
                    progress(what, picked)
                if picked < size:
                    break
        return total


def _runs_removed(batch: prune.RunsRemoved) -> Removed:
    return Removed(
        runs=batch.runs,
        run_events=batch.events,
        run_io=batch.run_io,
        assertions=batch.assertions,
    )


@contextlib.contextmanager
def claimed(engine: Engine, *, wait: bool) -> Iterator[bool]:
    """Whether this collector may prune now: on PostgreSQL it holds retention's advisory lock.

    SQLite has one writer, so every caller may (its batches queue behind each other).
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        if wait:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _RETENTION_LOCK})
            got = True
        else:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": _RETENTION_LOCK}
                ).scalar()
            )
        connection.commit()
        try:
            yield got
        finally:
            if got:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _RETENTION_LOCK}
                )
                connection.commit()
