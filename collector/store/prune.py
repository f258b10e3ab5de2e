"""Retention's statements: what is old enough to go, and removing it a small batch at a time.

Each `remove_*` function takes the caller's transaction and removes at most `limit` rows of
its kind, returning how many. What they select is stable while they work (removing a batch
never makes a kept row removable), so counting first (`count_*`) says what removing will do.
Rows are picked with FOR UPDATE SKIP LOCKED on PostgreSQL: a run an ingest holds is left for
the next pass, and two collectors pruning at once split the work instead of colliding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from collector.store.tables import (
    datasets,
    events,
    findings,
    gate_decisions,
    jobs,
    quality_assertions,
    removed_totals,
    run_io,
    runs,
    schema_versions,
)

FINISHED = ("COMPLETED", "FAILED", "ABORTED")


@dataclass(frozen=True)
class RunsRemoved:
    """One batch of runs removed, with what hung off them."""

    runs: int = 0
    events: int = 0
    run_io: int = 0
    assertions: int = 0


# --- runs -----------------------------------------------------------------------------


def _removable_runs(cutoff: datetime) -> Select[Any]:
    """Runs whose latest event is before the cutoff, except what must stay.

    Kept whatever their age: each job's latest run (what gates judge a job on) and its
    latest completed run (what a breaking schema change is measured from), and finished
    runs the detectors have not judged yet (they are the history of the runs after them).
    """
    newer = runs.alias("newer")
    latest = (
        select(newer.c.uuid)
        .where(newer.c.job_id == runs.c.job_id)
        .order_by(newer.c.created_at.desc(), newer.c.uuid.desc())
        .limit(1)
        .scalar_subquery()
    )
    success = runs.alias("success")
    last_success = (
        select(success.c.uuid)
        .where(success.c.job_id == runs.c.job_id, success.c.state == "COMPLETED")
        .order_by(success.c.created_at.desc(), success.c.uuid.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(runs.c.uuid).where(
        runs.c.updated_at < cutoff,
        or_(runs.c.detected_at.is_not(None), runs.c.state_rank < 2),
        runs.c.uuid != latest,
        runs.c.uuid.is_distinct_from(last_success),
    )


def count_runs(connection: Connection, cutoff: datetime) -> RunsRemoved:
    """What `remove_runs` would remove, in all."""
    removable = _removable_runs(cutoff).scalar_subquery()

    def rows(table: Any) -> int:
        query = select(func.count()).select_from(table).where(table.c.run_uuid.in_(removable))
        return int(connection.execute(query).scalar_one())

    return RunsRemoved(
        runs=_count(connection, _removable_runs(cutoff)),
        events=rows(events),
        run_io=rows(run_io),
        assertions=rows(quality_assertions),
    )


def remove_runs(connection: Connection, cutoff: datetime, limit: int) -> RunsRemoved:
    """Remove up to `limit` old runs, oldest first, with their raw events and what they used."""
    uuids = _pick(connection, _removable_runs(cutoff).order_by(runs.c.updated_at), limit)
    if not uuids:
        return RunsRemoved()
    removed_io = connection.execute(delete(run_io).where(run_io.c.run_uuid.in_(uuids))).rowcount
    removed_checks = connection.execute(
        delete(quality_assertions).where(quality_assertions.c.run_uuid.in_(uuids))
    ).rowcount
    # An event not derived yet stays: deriving it brings its run back, removed next time.
    removable = delete(events).where(events.c.run_uuid.in_(uuids), events.c.derived)
    removed_events = connection.execute(removable).rowcount
    gone = connection.execute(
        delete(runs).where(runs.c.uuid.in_(uuids)).returning(runs.c.job_id, runs.c.state)
    ).all()
    names = _job_names(connection, {job_id for job_id, _ in gone})
    _add_removed(
        connection,
        "run",
        Counter((*names[job_id], state, "") for job_id, state in gone if state in FINISHED),
    )
    return RunsRemoved(len(gone), removed_events, removed_io, removed_checks)


def _job_names(connection: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    query = select(jobs.c.id, jobs.c.namespace, jobs.c.name).where(jobs.c.id.in_(ids))
    return {row.id: (row.namespace, row.name) for row in connection.execute(query)}


# --- raw events without a run (job and dataset events) ---------------------------------


def _removable_events(cutoff: datetime) -> Select[Any]:
    return select(events.c.id).where(
        events.c.event_time < cutoff, events.c.run_uuid.is_(None), events.c.derived
    )


def count_other_events(connection: Connection, cutoff: datetime) -> int:
    return _count(connection, _removable_events(cutoff))


def remove_other_events(connection: Connection, cutoff: datetime, limit: int) -> int:
    """Job and dataset events older than the cutoff (a run's events go with its run).

    In no particular order: SQLite finds them by the run index (no run), and sorting them
    all by time for each batch would cost more than it tells.
    """
    ids = _pick(connection, _removable_events(cutoff), limit)
    if not ids:
        return 0
    return int(connection.execute(delete(events).where(events.c.id.in_(ids))).rowcount)


# --- schema versions ------------------------------------------------------------------


def _superseded_versions(cutoff: datetime) -> Select[Any]:
    """Versions another version of the dataset replaced before the cutoff.

    The version in force at the cutoff and every later one stay, so each dataset keeps its
    current schema and what changed in the kept history.
    """
    newer = schema_versions.alias("newer")
    replaced = exists().where(
        newer.c.dataset_id == schema_versions.c.dataset_id,
        newer.c.event_time > schema_versions.c.event_time,
        newer.c.event_time <= cutoff,
    )
    return select(schema_versions.c.id).where(schema_versions.c.event_time < cutoff, replaced)


def count_schema_versions(connection: Connection, cutoff: datetime) -> int:
    return _count(connection, _superseded_versions(cutoff))


def remove_schema_versions(connection: Connection, cutoff: datetime, limit: int) -> int:
    ids = _pick(
        connection, _superseded_versions(cutoff).order_by(schema_versions.c.event_time), limit
    )
    if not ids:
        return 0
    gone = connection.execute(
        delete(schema_versions)
        .where(schema_versions.c.id.in_(ids))
        .returning(schema_versions.c.dataset_id)
    ).scalars()
    per_dataset = Counter(gone)
    names = {
        row.id: (row.namespace, row.name)
        for row in connection.execute(
            select(datasets.c.id, datasets.c.namespace, datasets.c.name).where(
                datasets.c.id.in_(per_dataset)
            )
        )
    }
    _add_removed(
        connection,
        "schema_version",
        Counter({(*names[dataset_id], "", ""): n for dataset_id, n in per_dataset.items()}),
    )
    return sum(per_dataset.values())


# --- findings -------------------------------------------------------------------------


def _closed_findings(cutoff: datetime) -> Select[Any]:
    """Findings older than the cutoff that nobody needs to act on (open ones stay)."""
    return select(findings.c.id).where(findings.c.event_time < cutoff, findings.c.status != "open")


def count_findings(connection: Connection, cutoff: datetime) -> int:
    return _count(connection, _closed_findings(cutoff))


def remove_findings(connection: Connection, cutoff: datetime, limit: int) -> int:
    ids = _pick(connection, _closed_findings(cutoff).order_by(findings.c.event_time), limit)
    if not ids:
        return 0
    return int(connection.execute(delete(findings).where(findings.c.id.in_(ids))).rowcount)


# --- gate decisions -------------------------------------------------------------------


def _old_decisions(cutoff: datetime, keep: int) -> Select[Any]:
    """Decisions older than the cutoff, except each job's `keep` newest (its readiness)."""
    newer = gate_decisions.alias("newer")
    kept_back_to = (
        select(newer.c.decided_at)
        .where(
            newer.c.namespace == gate_decisions.c.namespace,
            newer.c.job == gate_decisions.c.job,
        )
        .order_by(newer.c.decided_at.desc(), newer.c.id.desc())
        .limit(1)
        .offset(keep - 1)
        .scalar_subquery()
    )
    return select(gate_decisions.c.id).where(
        gate_decisions.c.decided_at < cutoff, gate_decisions.c.decided_at < kept_back_to
    )


def count_decisions(connection: Connection, cutoff: datetime, keep: int) -> int:
    return _count(connection, _old_decisions(cutoff, keep))


def remove_decisions(connection: Connection, cutoff: datetime, keep: int, limit: int) -> int:
    ids = _pick(
        connection, _old_decisions(cutoff, keep).order_by(gate_decisions.c.decided_at), limit
    )
    if not ids:
        return 0
    gone = connection.execute(
        delete(gate_decisions)
        .where(gate_decisions.c.id.in_(ids))
        .returning(
            gate_decisions.c.namespace,
            gate_decisions.c.job,
            gate_decisions.c.decision,
            gate_decisions.c.mode,
        )
    ).all()
    _add_removed(connection, "gate_decision", Counter(tuple(row) for row in gone))
    return len(gone)


def _count(connection: Connection, removable: Select[Any]) -> int:
    """How many rows a query of removable rows selects."""
    query = select(func.count()).select_from(removable.subquery())
    return int(connection.execute(query).scalar_one())


def _pick(connection: Connection, removable: Select[Any], limit: int) -> list[Any]:
    """The ids of the next batch to remove, skipping rows another transaction holds."""
    picked = removable.limit(limit).with_for_update(skip_locked=True)
    return list(connection.execute(picked).scalars())


# --- what was removed, for counters ---------------------------------------------------


def _add_removed(connection: Connection, kind: str, counts: Counter[tuple[Any, ...]]) -> None:
    """Add to the removed totals: (namespace, name, outcome, mode) → how many."""
    if not counts:
        return
    rows = [
        {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "outcome": outcome,
            "mode": mode,
            "removed": n,
        }
        for (namespace, name, outcome, mode), n in counts.items()
    ]
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(removed_totals)
    statement = statement.on_conflict_do_update(
        index_elements=["kind", "namespace", "name", "outcome", "mode"],
        set_={"removed": removed_totals.c.removed + statement.excluded.removed},
    )
    connection.execute(statement, rows)


def removed_totals_of(connection: Connection, kind: str) -> Iterable[Any]:
    """(namespace, name, outcome, mode, removed) of everything retention removed of a kind."""
    query = select(
        removed_totals.c.namespace,
        removed_totals.c.name,
        removed_totals.c.outcome,
        removed_totals.c.mode,
        removed_totals.c.removed,
    ).where(removed_totals.c.kind == kind)
    return connection.execute(query).all()
