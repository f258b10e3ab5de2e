"""Writes to the store: race-safe inserts and row-locked read-modify-writes.

Every function takes an open Connection inside the caller's transaction, so one event's
raw row and everything derived from it commit together or not at all.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    func,
    not_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from collector.store.tables import (
    column_edges,
    datasets,
    events,
    expectations,
    findings,
    job_io,
    namespaces,
    quality_assertions,
    run_io,
    run_totals,
    runs,
    schema_versions,
)


def _insert(connection: Connection, table: Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)


# Row claims are PostgreSQL advisory locks (CLAIM_SPACE, bucket): names are hashed into a
# fixed number of buckets, so a transaction of 10,000 events holds at most CLAIM_BUCKETS
# locks (PostgreSQL's lock table is small); two names in one bucket only make writes queue.
CLAIM_SPACE = 7_316_240  # any fixed 32-bit number, apart from other users' advisory locks
CLAIM_BUCKETS = 512


def claim_keys(connection: Connection, keys: Iterable[str]) -> None:
    """On PostgreSQL, take a transaction-scoped advisory lock per key, in ascending order.

    Every writer claims the rows its transaction will lock this way first, so two
    collectors' transactions touching the same rows wait for each other in one order
    instead of deadlocking over them. SQLite has a single writer: nothing to claim.
    """
    if connection.dialect.name != "postgresql":
        return
    buckets = sorted({_bucket(key) for key in keys})
    if buckets:
        # unnest yields the array in order, so the locks are taken in ascending order.
        connection.execute(
            text(
                "SELECT pg_advisory_xact_lock(CAST(:space AS integer), bucket) "
                "FROM unnest(CAST(:buckets AS integer[])) AS bucket"
            ),
            {"space": CLAIM_SPACE, "buckets": buckets},
        )


def _bucket(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % CLAIM_BUCKETS


def ensure_namespace(connection: Connection, name: str, at: datetime) -> None:
    ensure_namespaces(connection, {name: at})


def lock_or_create(
    connection: Connection,
    table: Table,
    key: Sequence[ColumnElement[bool]],
    values: Mapping[str, Any],
) -> tuple[Row[Any], bool]:
    """The row matching `key`, locked until commit, created from `values` if missing.

    Returns the row and whether this call created it. Two writers racing to create the
    same row both end with the one row (the loser's insert does nothing).
    """
    query = select(table).where(and_(*key)).with_for_update()
    row = connection.execute(query).first()
    if row is not None:
        return row, False
    # RETURNING says whether this insert made the row (rowcount is -1 on psycopg with it).
    primary_key = next(iter(table.primary_key.columns))
    created = connection.execute(
        _insert(connection, table).values(**values).on_conflict_do_nothing().returning(primary_key)
    ).first()
    return connection.execute(query).one(), created is not None


def lock_dataset(
    connection: Connection, namespace: str, name: str, values: Mapping[str, Any]
) -> tuple[Row[Any], bool]:
    key = (datasets.c.namespace == namespace, datasets.c.name == name)
    return lock_or_create(
        connection, datasets, key, {"namespace": namespace, "name": name, **values}
    )


def update_row(
    connection: Connection, table: Table, key: ColumnElement[bool], **values: Any
) -> None:
    if values:
        connection.execute(update(table).where(key).values(**values))


# --- a group of events: each statement built once, run once per group ------------------

# Keys per statement: enough to use the indexes, few enough for any backend's limits.
CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for first in range(0, len(values), CHUNK):
        yield values[first : first + CHUNK]


@functools.cache
def _insert_into(dialect: str, table: Table) -> Any:
    """INSERT for a table in the backend's dialect (both say ON CONFLICT the same way)."""
    return postgresql_insert(table) if dialect == "postgresql" else sqlite_insert(table)


@functools.cache
def _insert_new(dialect: str, table: Table, returning: tuple[str, ...]) -> Any:
    statement = _insert_into(dialect, table).on_conflict_do_nothing()
    return statement.returning(*(table.c[name] for name in returning))


def insert_events(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert raw events, in order; the content hashes of those stored.

    An event whose content or run transition is already stored (or comes earlier in `rows`)
    is left out, so a hash repeated in `rows` was stored at its first place only.
    """
    if not rows:
        return set()
    statement = _insert_new(connection.dialect.name, events, ("content_hash",))
    return {row.content_hash for row in connection.execute(statement, list(rows))}


_PENDING_QUERY = (
    select(events.c.id, events.c.content_hash, events.c.payload)
    .where(not_(events.c.derived))
    .order_by(events.c.id)
    .limit(bindparam("limit"))
)


def pending_events(connection: Connection, limit: int) -> list[Row[Any]]:
    """The oldest events not derived yet (id, content_hash, payload), locked.

    On PostgreSQL rows another collector is deriving are skipped, so collectors sharing the
    database split the pending events between them instead of queueing on each other.
    """
    query = _PENDING_QUERY
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(connection.execute(query, {"limit": limit}))


_MARK_DERIVED = (
    update(events).where(events.c.id.in_(bindparam("ids", expanding=True))).values(derived=True)
)


def mark_derived(connection: Connection, ids: Sequence[int]) -> None:
    for chunk in _chunks(ids):
        connection.execute(_MARK_DERIVED, {"ids": list(chunk)})


def insert_new(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: tuple[str, ...],
) -> list[Row[Any]]:
    """Insert rows (all with the same columns), in order; `returning` of those inserted.

    A row another writer inserted first is skipped: the caller locks and updates it instead.
    """
    if not rows:
        return []
    statement = _insert_new(connection.dialect.name, table, returning)
    return list(connection.execute(statement, list(rows)))


@functools.cache
def _update_by_key(table: Table, key: tuple[str, ...]) -> Any:
    return update(table).where(*(table.c[name] == bindparam(f"key_{name}") for name in key))


def update_rows(
    connection: Connection, table: Table, key: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Update rows found by `key`: each row gives `key_<column>` and the same columns to set."""
    if rows:
        connection.execute(_update_by_key(table, key), list(rows))


@functools.cache
def _named_query(table: Table) -> Any:
    return (
        select(table)
        .where(
            table.c.namespace == bindparam("namespace"),
            table.c.name.in_(bindparam("names", expanding=True)),
        )
        .order_by(table.c.name)
        .with_for_update()
    )


def lock_named(
    connection: Connection, table: Table, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Row[Any]]:
    """The stored jobs or datasets (`table`) of these (namespace, name) keys, locked."""
    names: dict[str, list[str]] = {}
    for namespace, name in keys:
        names.setdefault(namespace, []).append(name)
    found: dict[tuple[str, str], Row[Any]] = {}
    for namespace in sorted(names):
        for chunk in _chunks(sorted(names[namespace])):
            query = {"namespace": namespace, "names": list(chunk)}
            for row in connection.execute(_named_query(table), query):
                found[(row.namespace, row.name)] = row
    return found


_RUNS_QUERY = (
    select(runs)
    .where(runs.c.uuid.in_(bindparam("uuids", expanding=True)))
    .order_by(runs.c.uuid)
    .with_for_update()
)
_RUN_IO_QUERY = (
    select(run_io)
    .where(run_io.c.run_uuid.in_(bindparam("uuids", expanding=True)))
    .order_by(run_io.c.run_uuid, run_io.c.dataset_id, run_io.c.direction)
    .with_for_update()
)


def lock_runs(connection: Connection, keys: Iterable[tuple[UUID]]) -> dict[tuple[UUID], Row[Any]]:
    """The stored runs of these (uuid,) keys, locked."""
    found: dict[tuple[UUID], Row[Any]] = {}
    for chunk in _chunks(sorted({uuid for (uuid,) in keys})):
        for row in connection.execute(_RUNS_QUERY, {"uuids": list(chunk)}):
            found[(row.uuid,)] = row
    return found


def lock_run_io(
    connection: Connection, keys: Iterable[tuple[UUID, int, str]]
) -> dict[tuple[UUID, int, str], Row[Any]]:
    """Every stored use of a dataset by the runs these keys name, locked, by key."""
    found: dict[tuple[UUID, int, str], Row[Any]] = {}
    for chunk in _chunks(sorted({uuid for uuid, _, _ in keys})):
        for row in connection.execute(_RUN_IO_QUERY, {"uuids": list(chunk)}):
            found[(row.run_uuid, row.dataset_id, row.direction)] = row
    return found


@functools.cache
def _ensure_namespaces(dialect: str) -> Any:
    return _insert_into(dialect, namespaces).on_conflict_do_nothing()


def ensure_namespaces(connection: Connection, first_seen: Mapping[str, datetime]) -> None:
    """Create the namespaces not stored yet, each as first seen at its time."""
    rows = [{"name": name, "created_at": at, "updated_at": at} for name, at in first_seen.items()]
    if rows:
        connection.execute(_ensure_namespaces(connection.dialect.name), rows)


@functools.cache
def _touch_job_io(dialect: str) -> Any:
    statement = _insert_into(dialect, job_io)
    return statement.on_conflict_do_update(
        index_elements=["job_id", "dataset_id", "direction"],
        set_={"last_seen": statement.excluded.last_seen},
        where=job_io.c.last_seen < statement.excluded.last_seen,
    )


def touch_job_io(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record that jobs read or wrote datasets, keeping each pair's newest time.

    One row per (job_id, dataset_id, direction): PostgreSQL refuses to update a row twice
    in one statement.
    """
    if rows:
        connection.execute(_touch_job_io(connection.dialect.name), list(rows))


def record_schema(
    connection: Connection,
    dataset_id: int,
    fields_hash: str,
    fields: list[Any],
    at: datetime,
    run_uuid: UUID | None,
) -> None:
    """Fold one observation of a dataset's schema into its versions.

    Versions are intervals of event time with one schema each; an observation extends the
    interval it falls in or touches, or starts a new version. Late observations land where
    their time says, so the versions come out the same whatever the arrival order.
    """
    versions = schema_versions.c
    before = connection.execute(
        select(schema_versions)
        .where(versions.dataset_id == dataset_id, versions.event_time <= at)
        .order_by(versions.event_time.desc(), versions.id.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if before is not None and before.fields_hash == fields_hash:
        if at > before.last_seen:
            update_row(connection, schema_versions, versions.id == before.id, last_seen=at)
        return
    after = connection.execute(
        select(schema_versions)
        .where(versions.dataset_id == dataset_id, versions.event_time > at)
        .order_by(versions.event_time, versions.id)
        .limit(1)
        .with_for_update()
    ).first()
    if (
        after is not None
        and after.fields_hash == fields_hash
        and (before is None or before.last_seen < at)
    ):
        update_row(
            connection, schema_versions, versions.id == after.id, event_time=at, run_uuid=run_uuid
        )
        return
    if before is not None and before.last_seen > at:
        # The observation splits an older version: what followed it is that schema again.
        update_row(connection, schema_versions, versions.id == before.id, last_seen=at)
        connection.execute(
            schema_versions.insert().values(
                dataset_id=dataset_id,
                fields_hash=before.fields_hash,
                fields=before.fields,
                event_time=before.last_seen,
                last_seen=before.last_seen,
                run_uuid=before.run_uuid,
            )
        )
    connection.execute(
        schema_versions.insert().values(
            dataset_id=dataset_id,
            fields_hash=fields_hash,
            fields=fields,
            event_time=at,
            last_seen=at,
            run_uuid=run_uuid,
        )
    )


def replace_column_edges(
    connection: Connection,
    job_id: int,
    out_dataset_id: int,
    edges: Iterable[Mapping[str, Any]],
    at: datetime,
) -> bool:
    """Make `edges` the job's column lineage into one dataset, unless newer lineage is stored.

    Only a newer facet counts: lineage parsed from SQL never holds back a producer's facet.
    """
    newest = connection.execute(
        select(func.max(column_edges.c.event_time)).where(
            column_edges.c.job_id == job_id,
            column_edges.c.out_dataset_id == out_dataset_id,
            column_edges.c.source == "facet",
        )
    ).scalar()
    if newest is not None and newest > at:
        return False
    connection.execute(
        delete(column_edges).where(
            column_edges.c.job_id == job_id, column_edges.c.out_dataset_id == out_dataset_id
        )
    )
    rows = [
        {"job_id": job_id, "out_dataset_id": out_dataset_id, "event_time": at, **e} for e in edges
    ]
    if rows:
        statement = _insert(connection, column_edges).on_conflict_do_nothing()
        connection.execute(statement, rows)
    return True


@functools.cache
def _upsert_assertions(dialect: str) -> Any:
    statement = _insert_into(dialect, quality_assertions)
    return statement.on_conflict_do_update(
        index_elements=["run_uuid", "dataset_id", "assertion", "column_name"],
        set_={"success": statement.excluded.success, "event_time": statement.excluded.event_time},
    )


def upsert_assertions(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store check results; a check already stored for the run takes the new result.

    One row per (run_uuid, dataset_id, assertion, column_name), as for `touch_job_io`.
    """
    if rows:
        connection.execute(_upsert_assertions(connection.dialect.name), list(rows))


def add_finding(connection: Connection, values: Mapping[str, Any]) -> bool:
    """Store a finding unless the same one (by key) is stored; True when it is new."""
    statement = _add_finding(connection.dialect.name, tuple(values))
    return connection.execute(statement, dict(values)).first() is not None


# Judging a run writes a dozen rows: the statements are built once per shape, not per call.
@functools.cache
def _add_finding(dialect: str, columns: tuple[str, ...]) -> Any:
    statement = _insert_into(dialect, findings).values({name: bindparam(name) for name in columns})
    return statement.on_conflict_do_nothing().returning(findings.c.id)


def resolve_findings(
    connection: Connection,
    namespace: str,
    job: str,
    kind: str,
    before: datetime,
    dataset: tuple[str, str] | None = None,
    run_uuid: UUID | None = None,
) -> int:
    """Mark resolved the job's open findings of a kind from before a time.

    Only those about `dataset`, or about run `run_uuid`, when given.
    """
    # Named apart from the columns: an UPDATE takes parameters named as columns to SET them.
    values: dict[str, Any] = {"f_ns": namespace, "f_job": job, "f_before": before, "f_kind": kind}
    if dataset is not None:
        values |= {"f_dataset_ns": dataset[0], "f_dataset": dataset[1]}
    if run_uuid is not None:
        values["f_run"] = run_uuid
    statement = _resolve_findings(dataset is not None, run_uuid is not None)
    return connection.execute(statement, values).rowcount


@functools.cache
def _resolve_findings(about_dataset: bool, about_run: bool) -> Any:
    conditions = [
        findings.c.namespace == bindparam("f_ns"),
        findings.c.job == bindparam("f_job"),
        findings.c.event_time < bindparam("f_before"),
        findings.c.kind == bindparam("f_kind"),
        findings.c.status == "open",
    ]
    if about_dataset:
        conditions += [
            findings.c.dataset_namespace == bindparam("f_dataset_ns"),
            findings.c.dataset == bindparam("f_dataset"),
        ]
    if about_run:
        conditions.append(findings.c.run_uuid == bindparam("f_run"))
    return update(findings).where(*conditions).values(status="resolved")


def claim_detection(connection: Connection, run_uuid: UUID, at: datetime) -> bool:
    """Mark a run judged and count it in the run totals; False when another collector got
    there first."""
    statement = (
        update(runs)
        .where(runs.c.uuid == run_uuid, runs.c.detected_at.is_(None))
        .values(detected_at=at)
        .returning(runs.c.job_id, runs.c.state)
    )
    claimed = connection.execute(statement).first()
    if claimed is None:
        return False
    connection.execute(_count_judged(connection.dialect.name), dict(claimed._mapping))
    return True


@functools.cache
def _count_judged(dialect: str) -> Any:
    statement = _insert_into(dialect, run_totals).values(
        job_id=bindparam("job_id"), state=bindparam("state"), runs=1
    )
    return statement.on_conflict_do_update(
        index_elements=["job_id", "state"], set_={"runs": run_totals.c.runs + 1}
    )


def set_expectation(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(_set_expectation(connection.dialect.name, tuple(values)), dict(values))


@functools.cache
def _set_expectation(dialect: str, columns: tuple[str, ...]) -> Any:
    insert = _insert_into(dialect, expectations)
    statement = insert.values({name: bindparam(name) for name in columns})
    keys = ["job_id", "dataset_id", "metric"]
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={k: statement.excluded[k] for k in columns if k not in keys},
        where=expectations.c.event_time <= statement.excluded.event_time,
    )


# --- SQL lineage ----------------------------------------------------------------------


def ensure_dataset(connection: Connection, namespace: str, name: str, at: datetime) -> int:
    """The id of a dataset named only by reference (a table in SQL), created if new."""
    ensure_namespace(connection, namespace, at)
    row, _ = lock_dataset(connection, namespace, name, new_dataset(at))
    return int(row.id)


def new_dataset(at: datetime) -> dict[str, Any]:
    """A dataset first seen at `at`, nothing known of it yet."""
    return {
        "created_at": at,
        "updated_at": at,
        "facets": {},
        "facet_times": {},
        "io_facets": {},
        "io_facet_times": {},
    }


def replace_parsed_column_edges(
    connection: Connection,
    job_id: int,
    out_dataset_id: int,
    edges: Iterable[Mapping[str, Any]],
    at: datetime,
) -> bool:
    """Make `edges` (parsed from SQL) the job's lineage into a dataset, unless it should not be.

    False, storing nothing, when the producer sent a columnLineage facet for this output
    (a facet always wins) or lineage parsed from a newer run is already stored.
    """
    edge = column_edges.c
    this_output = (edge.job_id == job_id) & (edge.out_dataset_id == out_dataset_id)
    facet = connection.execute(
        select(edge.id).where(this_output, edge.source == "facet").limit(1)
    ).first()
    if facet is not None:
        return False
    newest = connection.execute(
        select(func.max(edge.event_time)).where(this_output, edge.source == "parsed")
    ).scalar()
    if newest is not None and newest > at:
        return False
    connection.execute(delete(column_edges).where(this_output, edge.source == "parsed"))
    rows = [
        {"job_id": job_id, "out_dataset_id": out_dataset_id, "event_time": at, **e} for e in edges
    ]
    if rows:
        connection.execute(_insert(connection, column_edges).on_conflict_do_nothing(), rows)
    return True


def set_sql_parse_error(connection: Connection, run_uuid: UUID, error: str | None) -> None:
    """Record why the run's SQL did not parse (None: it parsed)."""
    connection.execute(update(runs).where(runs.c.uuid == run_uuid).values(sql_parse_error=error))
