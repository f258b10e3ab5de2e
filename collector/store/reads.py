"""Reads for the API: each one an indexed lookup or range, whatever the history length."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast
from uuid import UUID

from sqlalchemy import (
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    func,
    not_,
    or_,
    select,
    union,
)

from collector.store.tables import (
    UTCDateTime,
    column_edges,
    datasets,
    events,
    findings,
    gate_decisions,
    job_io,
    jobs,
    namespaces,
    quality_assertions,
    run_io,
    run_totals,
    runs,
    schema_versions,
)


def list_namespaces(
    connection: Connection, limit: int, offset: int, only: Collection[str] | None = None
) -> Sequence[Row[Any]]:
    """Namespaces by name; `only` these names when given."""
    query = select(namespaces).order_by(namespaces.c.name).limit(limit).offset(offset)
    if only is not None:
        query = query.where(namespaces.c.name.in_(only))
    return connection.execute(query).all()


def get_namespace(connection: Connection, name: str) -> Row[Any] | None:
    return connection.execute(select(namespaces).where(namespaces.c.name == name)).first()


def list_jobs(
    connection: Connection, namespace: str, limit: int, offset: int
) -> tuple[Sequence[Row[Any]], int]:
    where = jobs.c.namespace == namespace
    rows = connection.execute(
        select(jobs).where(where).order_by(jobs.c.name).limit(limit).offset(offset)
    ).all()
    total = connection.execute(select(func.count()).select_from(jobs).where(where)).scalar_one()
    return rows, total


def get_job(connection: Connection, namespace: str, name: str) -> Row[Any] | None:
    query = select(jobs).where(jobs.c.namespace == namespace, jobs.c.name == name)
    return connection.execute(query).first()


def list_runs(
    connection: Connection, job_id: int, limit: int, offset: int
) -> tuple[Sequence[Row[Any]], int]:
    """A job's runs, newest first."""
    where = runs.c.job_id == job_id
    rows = connection.execute(
        select(runs)
        .where(where)
        .order_by(runs.c.created_at.desc(), runs.c.uuid.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    total = connection.execute(select(func.count()).select_from(runs).where(where)).scalar_one()
    return rows, total


def get_run(connection: Connection, uuid: UUID) -> Row[Any] | None:
    query = select(runs, jobs.c.namespace, jobs.c.name.label("job_name")).join(jobs)
    return connection.execute(query.where(runs.c.uuid == uuid)).first()


def run_datasets(connection: Connection, uuid: UUID) -> Sequence[Row[Any]]:
    """The datasets a run read and wrote, with their counts and facets."""
    query = (
        select(run_io, datasets.c.namespace, datasets.c.name)
        .join(datasets, datasets.c.id == run_io.c.dataset_id)
        .where(run_io.c.run_uuid == uuid)
        .order_by(run_io.c.direction, datasets.c.namespace, datasets.c.name)
    )
    return connection.execute(query).all()


def job_datasets(connection: Connection, job_ids: Collection[int]) -> Sequence[Row[Any]]:
    """(job_id, dataset_id, direction, namespace, name) for every dataset the jobs touched."""
    if not job_ids:
        return []
    query: Select[Any] = (
        select(
            job_io.c.job_id,
            job_io.c.dataset_id,
            job_io.c.direction,
            datasets.c.namespace,
            datasets.c.name,
        )
        .join(datasets, datasets.c.id == job_io.c.dataset_id)
        .where(job_io.c.job_id.in_(job_ids))
        .order_by(datasets.c.namespace, datasets.c.name)
    )
    return connection.execute(query).all()


def list_datasets(
    connection: Connection, namespace: str, limit: int, offset: int
) -> tuple[Sequence[Row[Any]], int]:
    where = datasets.c.namespace == namespace
    rows = connection.execute(
        select(datasets).where(where).order_by(datasets.c.name).limit(limit).offset(offset)
    ).all()
    total = connection.execute(select(func.count()).select_from(datasets).where(where)).scalar_one()
    return rows, total


def get_dataset(connection: Connection, namespace: str, name: str) -> Row[Any] | None:
    query = select(datasets).where(datasets.c.namespace == namespace, datasets.c.name == name)
    return connection.execute(query).first()


def datasets_by_id(connection: Connection, ids: Collection[int]) -> dict[int, Row[Any]]:
    if not ids:
        return {}
    rows = connection.execute(select(datasets).where(datasets.c.id.in_(ids))).all()
    return {row.id: row for row in rows}


def current_schema(connection: Connection, dataset_id: int) -> Row[Any] | None:
    query = (
        select(schema_versions)
        .where(schema_versions.c.dataset_id == dataset_id)
        .order_by(schema_versions.c.event_time.desc(), schema_versions.c.id.desc())
        .limit(1)
    )
    return connection.execute(query).first()


def list_events(
    connection: Connection,
    *,
    before: datetime | None,
    after: datetime | None,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[str], int]:
    """Raw stored events in event-time order (JSON text as stored) and how many match."""
    conditions = []
    if before is not None:
        conditions.append(events.c.event_time < before)
    if after is not None:
        conditions.append(events.c.event_time > after)
    where = and_(True, *conditions)
    order = (
        (events.c.event_time.desc(), events.c.id.desc())
        if descending
        else (events.c.event_time, events.c.id)
    )
    payloads = connection.execute(
        select(events.c.payload).where(where).order_by(*order).limit(limit).offset(offset)
    ).scalars()
    total = connection.execute(select(func.count()).select_from(events).where(where)).scalar_one()
    return list(payloads), total


# --- for gates ------------------------------------------------------------------------
# A gate is asked before every run: its reads are few, each built once here (a call only
# binds its parameters) and each an index seek. What a gate needs of each dataset comes in
# the dataset's row, as correlated subqueries of one index entry each; the rest of its
# state (schema versions, quality results, anomalies' messages) is read only where that row
# says there is some.

_NEWEST_FIRST = (runs.c.created_at.desc(), runs.c.uuid.desc())
_COMPLETED = runs.c.state == "COMPLETED"


def _newest_run(column: Any, *where: Any) -> Any:
    """`column` of the newest run (meeting `where`) of the job in the enclosing query."""
    query = select(column).where(runs.c.job_id == jobs.c.id, *where)
    return query.order_by(*_NEWEST_FIRST).limit(1).scalar_subquery()


_GATE_JOB: Select[Any] = select(
    jobs.c.id,
    jobs.c.facets,
    _newest_run(runs.c.uuid).label("latest_run_uuid"),
    _newest_run(runs.c.created_at, _COMPLETED).label("last_success_at"),
).where(jobs.c.namespace == bindparam("namespace"), jobs.c.name == bindparam("name"))


def gate_job(connection: Connection, namespace: str, name: str) -> Row[Any] | None:
    """The job (`id`, `facets`) with `latest_run_uuid`, its newest run, and
    `last_success_at`, when its newest completed run was created (each None without)."""
    return connection.execute(_GATE_JOB, {"namespace": namespace, "name": name}).first()


def latest_run(connection: Connection, job_id: int) -> Row[Any] | None:
    query = select(runs).where(runs.c.job_id == job_id).order_by(*_NEWEST_FIRST).limit(1)
    return connection.execute(query).first()


_versions = schema_versions.c
_SINCE = bindparam("since", type_=UTCDateTime)


def _schema_version(*where: Any, newest: bool) -> Any:
    """The id of the dataset's newest (or oldest) schema version meeting `where`."""
    order = (
        (_versions.event_time.desc(), _versions.id.desc())
        if newest
        else (_versions.event_time, _versions.id)
    )
    query = select(_versions.id).where(_versions.dataset_id == datasets.c.id, *where)
    return query.order_by(*order).limit(1).scalar_subquery()


# Open findings of these kinds on an input are what a gate reports as its anomalies.
GATE_ANOMALY_KINDS = ("volume",)
_OPEN_ANOMALY = and_(
    findings.c.status == "open", or_(*(findings.c.kind == kind for kind in GATE_ANOMALY_KINDS))
)
_checks = quality_assertions.c
_NEWEST_CHECK = (
    select(_checks.run_uuid)
    .where(_checks.dataset_id == datasets.c.id)
    .order_by(_checks.event_time.desc())
    .limit(1)
    .correlate(datasets)
    .scalar_subquery()
)
_DATASET_STATE = (
    datasets.c.id,
    datasets.c.namespace,
    datasets.c.name,
    datasets.c.last_modified_at,
    # the version in force when the job last succeeded (`since`), the first and the newest
    # after it
    _schema_version(_versions.event_time <= _SINCE, newest=True).label("schema_at_since"),
    _schema_version(_versions.event_time > _SINCE, newest=False).label("schema_first_after"),
    _schema_version(_versions.event_time > _SINCE, newest=True).label("schema_newest"),
    # the newest run that checked the dataset, and its parent run
    _NEWEST_CHECK.label("check_run_uuid"),
    select(runs.c.parent_run_uuid)
    .where(runs.c.uuid == _NEWEST_CHECK)
    .scalar_subquery()
    .label("check_parent_run_uuid"),
    exists()
    .where(
        findings.c.dataset_namespace == datasets.c.namespace,
        findings.c.dataset == datasets.c.name,
        _OPEN_ANOMALY,
    )
    .label("open_anomaly"),
)
_GATE_RUN_DATASETS: Select[Any] = (
    select(run_io.c.direction, *_DATASET_STATE)
    .join(datasets, datasets.c.id == run_io.c.dataset_id)
    .where(run_io.c.run_uuid == bindparam("run_uuid"))
    .order_by(run_io.c.direction, datasets.c.namespace, datasets.c.name)
)
# Namespaces and names as two lists, which both backends seek in the (namespace, name)
# index (SQLite scans the table for a list of pairs); pairs not asked for are left out after.
_GATE_NAMED_DATASETS: Select[Any] = select(*_DATASET_STATE).where(
    datasets.c.namespace.in_(bindparam("namespaces", expanding=True)),
    datasets.c.name.in_(bindparam("names", expanding=True)),
)


def gate_run_datasets(
    connection: Connection, run_uuid: UUID, since: datetime | None
) -> Sequence[Row[Any]]:
    """The datasets a run read and wrote (`direction`), each with its state for a gate:
    `schema_at_since`, `schema_first_after` and `schema_newest` (ids of schema versions:
    the one in force at `since`, the first and the newest after it), `check_run_uuid` and
    `check_parent_run_uuid` (the newest run that checked it and that run's parent), and
    `open_anomaly` (whether a finding of a GATE_ANOMALY_KINDS kind is open on it)."""
    parameters = {"run_uuid": run_uuid, "since": since}
    return connection.execute(_GATE_RUN_DATASETS, parameters).all()


def gate_named_datasets(
    connection: Connection,
    names: Collection[tuple[str, str]],
    since: datetime | None,
) -> Sequence[Row[Any]]:
    """The stored datasets of these (namespace, name), each with its state as above."""
    if not names:
        return []
    parameters = {
        "namespaces": list({namespace for namespace, _ in names}),
        "names": list({name for _, name in names}),
        "since": since,
    }
    rows = connection.execute(_GATE_NAMED_DATASETS, parameters)
    return [row for row in rows if (row.namespace, row.name) in names]


_VERSIONS_BY_ID: Select[Any] = select(_versions.id, _versions.fields, _versions.event_time).where(
    _versions.id.in_(bindparam("ids", expanding=True))
)


def schema_versions_by_id(connection: Connection, ids: Collection[int]) -> dict[int, Row[Any]]:
    """Schema versions (`fields`, `event_time`) by id."""
    if not ids:
        return {}
    rows = connection.execute(_VERSIONS_BY_ID, {"ids": list(ids)}).all()
    return {row.id: row for row in rows}


_PRODUCED_AT = func.coalesce(runs.c.ended_at, runs.c.created_at)


def _producers_of(dataset_ids: Any) -> Select[Any]:
    return (
        select(
            job_io.c.dataset_id,
            jobs.c.id,
            jobs.c.namespace,
            jobs.c.name,
            _newest_run(runs.c.state).label("state"),
            _newest_run(_PRODUCED_AT).label("at"),
            _newest_run(_PRODUCED_AT, _COMPLETED).label("last_success"),
        )
        .join(jobs, jobs.c.id == job_io.c.job_id)
        .where(job_io.c.dataset_id.in_(dataset_ids), job_io.c.direction == "output")
    )


_PRODUCERS = _producers_of(bindparam("dataset_ids", expanding=True))
# A list of ids is spliced into the statement's text at each call, which costs more than
# the query: a run's inputs are named by the run instead.
_PRODUCERS_OF_RUN_INPUTS = _producers_of(
    select(run_io.c.dataset_id).where(
        run_io.c.run_uuid == bindparam("run_uuid"), run_io.c.direction == "input"
    )
)


def producers(connection: Connection, dataset_ids: Collection[int]) -> dict[int, list[Row[Any]]]:
    """Per dataset, the jobs that write it (`id`, `namespace`, `name`), each with its newest
    run's `state` and end (`at`, its creation while running) and the end of its newest
    completed run (`last_success`); `state` and `at` are None for a job with no run."""
    if not dataset_ids:
        return {}
    return _by_dataset(connection.execute(_PRODUCERS, {"dataset_ids": list(dataset_ids)}))


def producers_of_run_inputs(connection: Connection, run_uuid: UUID) -> dict[int, list[Row[Any]]]:
    """`producers` of the datasets the run read."""
    return _by_dataset(connection.execute(_PRODUCERS_OF_RUN_INPUTS, {"run_uuid": run_uuid}))


def _by_dataset(rows: Iterable[Row[Any]]) -> dict[int, list[Row[Any]]]:
    found: dict[int, list[Row[Any]]] = {}
    for row in rows:
        found.setdefault(row.dataset_id, []).append(row)
    return found


_JOB_EDGES: Select[Any] = select(
    column_edges.c.in_dataset_id, column_edges.c.in_field, column_edges.c.out_dataset_id
).where(column_edges.c.job_id == bindparam("job_id"))


def job_edges(connection: Connection, job_id: int) -> Sequence[Row[Any]]:
    """The job's column edges: (in_dataset_id, in_field, out_dataset_id)."""
    return connection.execute(_JOB_EDGES, {"job_id": job_id}).all()


def columns_read(connection: Connection, job_id: int) -> dict[int, set[str]] | None:
    """Per input dataset, the columns the job's column lineage reads; None without lineage."""
    return read_columns(job_edges(connection, job_id))


def read_columns(edges: Sequence[Row[Any]]) -> dict[int, set[str]] | None:
    """Per input dataset, the columns these edges read; None without edges."""
    if not edges:
        return None
    read: dict[int, set[str]] = {}
    for edge in edges:
        read.setdefault(edge.in_dataset_id, set()).add(edge.in_field)
    return read


_NEWEST_CHECK_OF: Select[Any] = (
    select(_checks.run_uuid, runs.c.parent_run_uuid)
    .join(runs, runs.c.uuid == _checks.run_uuid)
    .where(_checks.dataset_id == bindparam("dataset_id"))
    .order_by(_checks.event_time.desc())
    .limit(1)
)
_CHECK_OF_RUN: Select[Any] = select(quality_assertions).where(
    _checks.dataset_id == bindparam("dataset_id"), _checks.run_uuid == bindparam("run_uuid")
)
_CHECK_OF_SIBLINGS: Select[Any] = select(quality_assertions).where(
    _checks.dataset_id == bindparam("dataset_id"),
    _checks.run_uuid.in_(
        select(runs.c.uuid).where(runs.c.parent_run_uuid == bindparam("parent_run_uuid"))
    ),
)


def latest_assertions(connection: Connection, dataset_id: int) -> Sequence[Row[Any]]:
    """The quality results of the newest check of the dataset, the latest of each check.

    A check is the newest run that checked the dataset, together with its sibling runs (the
    same parent run): an orchestrator may check one dataset in several child runs, as
    dbt-ol's structured-log mode sends one run per dbt test.
    """
    newest = connection.execute(_NEWEST_CHECK_OF, {"dataset_id": dataset_id}).first()
    if newest is None:
        return []
    return check_results(connection, dataset_id, newest.run_uuid, newest.parent_run_uuid)


def check_results(
    connection: Connection, dataset_id: int, run_uuid: UUID, parent_run_uuid: UUID | None
) -> Sequence[Row[Any]]:
    """The latest result of each assertion on the dataset by this run, or by this parent's
    runs when the run has a parent (see `latest_assertions`)."""
    if parent_run_uuid is None:
        parameters = {"dataset_id": dataset_id, "run_uuid": run_uuid}
        rows = connection.execute(_CHECK_OF_RUN, parameters).all()
    else:
        parameters = {"dataset_id": dataset_id, "parent_run_uuid": parent_run_uuid}
        rows = connection.execute(_CHECK_OF_SIBLINGS, parameters).all()
    latest: dict[tuple[str, str], Row[Any]] = {}
    for row in sorted(rows, key=lambda row: row.event_time):
        latest[(row.assertion, row.column_name)] = row
    return list(latest.values())


def recent_decisions(
    connection: Connection, namespace: str, job: str, limit: int
) -> Sequence[Row[Any]]:
    query = (
        select(gate_decisions)
        .where(gate_decisions.c.namespace == namespace, gate_decisions.c.job == job)
        .order_by(gate_decisions.c.decided_at.desc(), gate_decisions.c.id.desc())
        .limit(limit)
    )
    return connection.execute(query).all()


# --- for detection --------------------------------------------------------------------

HISTORY_LIMIT = 400  # the newest points a baseline rests on


# Finished and not judged yet: the evaluator's backlog, read by its partial index.
_UNDETECTED = and_(runs.c.state_rank == 2, runs.c.detected_at.is_(None))


def undetected_runs(connection: Connection, limit: int) -> Sequence[Row[Any]]:
    """Finished runs the detectors have not judged yet, oldest first."""
    query = (
        select(runs, jobs.c.namespace, jobs.c.name.label("job_name"))
        .join(jobs)
        .where(_UNDETECTED)
        .order_by(runs.c.created_at)
        .limit(limit)
    )
    return connection.execute(query).all()


def count_undetected_runs(connection: Connection) -> int:
    """How many finished runs wait for the detectors (the evaluator's backlog)."""
    query = select(func.count()).where(_UNDETECTED)
    return int(connection.execute(query).scalar_one())


def running_runs(connection: Connection) -> Sequence[Row[Any]]:
    query = (
        select(runs, jobs.c.namespace, jobs.c.name.label("job_name"))
        .join(jobs)
        .where(runs.c.state == "RUNNING", runs.c.started_at.is_not(None))
    )
    return connection.execute(query).all()


# What the detectors read of a job's earlier runs (not their facets).
_HISTORY_COLUMNS = (
    runs.c.uuid,
    runs.c.state,
    runs.c.created_at,
    runs.c.started_at,
    runs.c.duration_ms,
    runs.c.verdict,
)


def _job_history(*columns: Any) -> Select[Any]:
    """`columns` of the job's runs created before `before`, newest first, HISTORY_LIMIT."""
    return (
        select(*columns)
        .where(runs.c.job_id == bindparam("job_id"), runs.c.created_at < bindparam("before"))
        .order_by(*_NEWEST_FIRST)
        .limit(HISTORY_LIMIT)
    )


_HISTORY_QUERY = _job_history(*_HISTORY_COLUMNS)
_STARTS_QUERY = _job_history(func.coalesce(runs.c.started_at, runs.c.created_at))


def runs_before(connection: Connection, job_id: int, before: datetime) -> Sequence[Row[Any]]:
    """The job's runs created before `before`, newest first, at most HISTORY_LIMIT: their
    uuid, state, created_at, started_at, duration_ms and verdict."""
    return connection.execute(_HISTORY_QUERY, {"job_id": job_id, "before": before}).all()


def starts_before(connection: Connection, job_id: int, before: datetime) -> Sequence[datetime]:
    """When the runs of `runs_before` started (created, for a run with no start event)."""
    return connection.execute(_STARTS_QUERY, {"job_id": job_id, "before": before}).scalars().all()


def written_before(
    connection: Connection, job_id: int, dataset_id: int, before: datetime
) -> Sequence[Row[Any]]:
    """What the job's earlier finished runs wrote to the dataset: (run, ended_at, rows, verdict)."""
    query: Select[Any] = (
        select(
            runs.c.uuid,
            runs.c.ended_at,
            run_io.c.row_count,
            run_io.c.bytes,
            run_io.c.verdict,
        )
        .join(runs, runs.c.uuid == run_io.c.run_uuid)
        .where(
            run_io.c.dataset_id == dataset_id,
            run_io.c.direction == "output",
            runs.c.job_id == job_id,
            runs.c.state == "COMPLETED",
            runs.c.created_at < before,
        )
        .order_by(runs.c.created_at.desc())
        .limit(HISTORY_LIMIT)
    )
    return connection.execute(query).all()


def schema_versions_of_run(
    connection: Connection, run_uuid: UUID
) -> list[tuple[Row[Any], Row[Any]]]:
    """Schema versions first seen in this run, each with the version before it."""
    query = select(schema_versions).where(schema_versions.c.run_uuid == run_uuid)
    found = []
    for version in connection.execute(query).all():
        previous = connection.execute(
            select(schema_versions)
            .where(
                schema_versions.c.dataset_id == version.dataset_id,
                schema_versions.c.event_time < version.event_time,
            )
            .order_by(schema_versions.c.event_time.desc(), schema_versions.c.id.desc())
            .limit(1)
        ).first()
        if previous is not None:
            found.append((previous, version))
    return found


def run_assertions(connection: Connection, run_uuid: UUID) -> Sequence[Row[Any]]:
    """The run's quality results, each with its dataset's `dataset_namespace`, `dataset_name`.

    (Labelled: an assertion has a `name` of its own.)
    """
    query: Select[Any] = (
        select(
            quality_assertions,
            datasets.c.namespace.label("dataset_namespace"),
            datasets.c.name.label("dataset_name"),
        )
        .join(datasets, datasets.c.id == quality_assertions.c.dataset_id)
        .where(quality_assertions.c.run_uuid == run_uuid)
    )
    return connection.execute(query).all()


def all_jobs(connection: Connection) -> Sequence[Row[Any]]:
    query: Select[Any] = select(jobs.c.id, jobs.c.namespace, jobs.c.name)
    return connection.execute(query).all()


def list_findings(
    connection: Connection, filters: dict[str, Any], limit: int, offset: int
) -> tuple[Sequence[Row[Any]], int]:
    conditions = [
        getattr(findings.c, column) == value
        for column, value in filters.items()
        if value is not None and column != "since"
    ]
    if filters.get("since") is not None:
        conditions.append(findings.c.event_time >= filters["since"])
    where = and_(True, *conditions)
    rows = connection.execute(
        select(findings)
        .where(where)
        .order_by(findings.c.event_time.desc(), findings.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    total = connection.execute(select(func.count()).select_from(findings).where(where)).scalar_one()
    return rows, total


def get_finding(connection: Connection, finding_id: int) -> Row[Any] | None:
    return connection.execute(select(findings).where(findings.c.id == finding_id)).first()


_ANOMALIES_ON: Select[Any] = select(findings.c.message).where(
    findings.c.dataset_namespace == bindparam("namespace"),
    findings.c.dataset == bindparam("name"),
    _OPEN_ANOMALY,
)


def open_anomalies_on(connection: Connection, namespace: str, name: str) -> list[str]:
    """The messages of the open findings of a GATE_ANOMALY_KINDS kind on the dataset."""
    parameters = {"namespace": namespace, "name": name}
    return list(connection.execute(_ANOMALIES_ON, parameters).scalars())


def edges_into(
    connection: Connection, dataset_id: int, fields: Collection[str] | None = None
) -> Sequence[Row[Any]]:
    """Column edges that write into a dataset (all its columns, or the given ones)."""
    query = select(column_edges).where(column_edges.c.out_dataset_id == dataset_id)
    if fields is not None:
        query = query.where(column_edges.c.out_field.in_(fields))
    return connection.execute(query).all()


# --- for metrics ----------------------------------------------------------------------

ACTIVE = ("NEW", "RUNNING")


def finished_run_counts(connection: Connection) -> Sequence[Row[int, str, int]]:
    """(job_id, state, runs) of the finished runs: those judged, from the run totals
    (retention does not lower them), and those waiting for the detectors, from the backlog's
    index; a (job_id, state) may come twice. One statement: one snapshot on every backend,
    so a run judged meanwhile is counted once."""
    judged = select(run_totals.c.job_id, run_totals.c.state, run_totals.c.runs)
    waiting = (
        select(runs.c.job_id, runs.c.state, func.count())
        .where(_UNDETECTED)
        .group_by(runs.c.job_id, runs.c.state)
    )
    return connection.execute(judged.union_all(waiting)).all()


def active_run_counts(connection: Connection) -> Sequence[Row[int, str, int]]:
    """(job_id, state, runs) of the runs started and not finished."""
    query = (
        select(runs.c.job_id, runs.c.state, func.count())
        .where(runs.c.state.in_(ACTIVE))
        .group_by(runs.c.job_id, runs.c.state)
    )
    return connection.execute(query).all()


def latest_by_job(connection: Connection) -> Sequence[Row[Any]]:
    """Per job (`id`): `duration_ms` of its latest run that has one, and the end (event
    time) of its latest completed run, `succeeded_at`, and latest failed one, `failed_at`;
    each a step down an index of the job's runs, whatever its history's length."""
    return connection.execute(_LATEST_BY_JOB).all()


_ENDED = func.coalesce(runs.c.ended_at, runs.c.state_time)
_LATEST_BY_JOB: Select[Any] = select(
    jobs.c.id,
    _newest_run(runs.c.duration_ms, runs.c.duration_ms.is_not(None)).label("duration_ms"),
    _newest_run(_ENDED, _COMPLETED).label("succeeded_at"),
    _newest_run(_ENDED, runs.c.state == "FAILED").label("failed_at"),
)


# --- SQL and column lineage -----------------------------------------------------------


def run_payloads(connection: Connection, run_uuid: UUID) -> Sequence[Row[Any]]:
    """The run's raw events, (event_time, payload), oldest first."""
    query: Select[Any] = (
        select(events.c.event_time, events.c.payload)
        .where(events.c.run_uuid == run_uuid)
        .order_by(events.c.event_time, events.c.id)
    )
    return connection.execute(query).all()


# --- lineage graphs -------------------------------------------------------------------
# A walk reads whole levels of a graph at once: each statement is built once, with its
# id lists bound as expanding parameters, and selects only the columns the walk or the
# answer uses. Every one is an index search (tests/test_query_plans.py).

Link = tuple[int, int, str]  # (job_id, dataset_id, direction)
_LINK = (job_io.c.job_id, job_io.c.dataset_id, job_io.c.direction)
_JOB_LINKS: Select[Any] = select(*_LINK).where(
    job_io.c.job_id.in_(bindparam("job_ids", expanding=True))
)
_LINKS_NEAR: Select[Any] = select(*_LINK).where(
    job_io.c.job_id.in_(
        select(job_io.c.job_id).where(
            job_io.c.dataset_id.in_(bindparam("dataset_ids", expanding=True))
        )
    )
)


class GraphJob(NamedTuple):
    """What a lineage graph node shows of a job (a plain tuple: its fields are read often)."""

    id: int
    namespace: str
    name: str
    type: str
    created_at: datetime
    updated_at: datetime
    description: str | None
    location: str | None
    facets: dict[str, Any]


class GraphDataset(NamedTuple):
    """What a lineage graph node shows of a dataset."""

    id: int
    namespace: str
    name: str
    created_at: datetime
    updated_at: datetime
    last_modified_at: datetime | None
    description: str | None
    facets: dict[str, Any]


_GRAPH_JOBS: Select[Any] = select(*(jobs.c[name] for name in GraphJob._fields)).where(
    jobs.c.id.in_(bindparam("ids", expanding=True))
)
_GRAPH_DATASETS: Select[Any] = select(*(datasets.c[name] for name in GraphDataset._fields)).where(
    datasets.c.id.in_(bindparam("ids", expanding=True))
)


def job_links(connection: Connection, job_ids: Collection[int]) -> Sequence[Link]:
    """(job_id, dataset_id, direction) for every dataset the jobs read or wrote."""
    if not job_ids:
        return []
    return cast(Sequence[Link], connection.execute(_JOB_LINKS, {"job_ids": list(job_ids)}).all())


def links_near(connection: Connection, dataset_ids: Collection[int]) -> Sequence[Link]:
    """(job_id, dataset_id, direction) of every job that read or wrote one of the datasets,
    for all the datasets each such job read or wrote."""
    if not dataset_ids:
        return []
    rows = connection.execute(_LINKS_NEAR, {"dataset_ids": list(dataset_ids)}).all()
    return cast(Sequence[Link], rows)


def graph_jobs(connection: Connection, ids: Collection[int]) -> dict[int, GraphJob]:
    """The jobs, by id."""
    if not ids:
        return {}
    rows = connection.execute(_GRAPH_JOBS, {"ids": list(ids)}).all()
    return {row[0]: GraphJob._make(row) for row in rows}


def graph_datasets(connection: Connection, ids: Collection[int]) -> dict[int, GraphDataset]:
    """The datasets, by id."""
    if not ids:
        return {}
    rows = connection.execute(_GRAPH_DATASETS, {"ids": list(ids)}).all()
    return {row[0]: GraphDataset._make(row) for row in rows}


_edge = column_edges.c
_TRANSFORMATION = (
    _edge.out_dataset_id,
    _edge.out_field,
    _edge.in_dataset_id,
    _edge.in_field,
    _edge.type,
    _edge.subtype,
    _edge.description,
    _edge.masking,
)
_first_seen = func.min(_edge.id)
# One row per distinct transformation, however many jobs (or runs of SQL) stored it, in
# the order the edges were stored.
_FIELD_INPUTS: Select[Any] = (
    select(*_TRANSFORMATION)
    .where(
        _edge.out_dataset_id.in_(bindparam("dataset_ids", expanding=True)),
        _edge.out_field.in_(bindparam("fields", expanding=True)),
    )
    .group_by(*_TRANSFORMATION)
    .order_by(_edge.out_dataset_id, _edge.out_field, _first_seen)
)
_FIELD_READERS: Select[Any] = (
    select(_edge.in_dataset_id, _edge.in_field, _edge.out_dataset_id, _edge.out_field)
    .distinct()
    .where(
        _edge.in_dataset_id.in_(bindparam("dataset_ids", expanding=True)),
        _edge.in_field.in_(bindparam("fields", expanding=True)),
    )
)
_JOB_OUTPUT_FIELDS: Select[Any] = (
    select(_edge.out_dataset_id, _edge.out_field)
    .distinct()
    .where(_edge.job_id == bindparam("job_id"))
)
_EDGE_FIELDS = union(
    select(_edge.out_dataset_id.label("dataset_id"), _edge.out_field.label("field")).where(
        _edge.out_dataset_id.in_(bindparam("dataset_ids", expanding=True))
    ),
    select(_edge.in_dataset_id, _edge.in_field).where(
        _edge.in_dataset_id.in_(bindparam("dataset_ids", expanding=True))
    ),
)
_newest_version = (
    select(schema_versions.c.id)
    .where(schema_versions.c.dataset_id == datasets.c.id)
    .order_by(schema_versions.c.event_time.desc(), schema_versions.c.id.desc())
    .limit(1)
    .correlate(datasets)
    .scalar_subquery()
)
_CURRENT_SCHEMAS: Select[Any] = select(
    schema_versions.c.dataset_id, schema_versions.c.fields
).where(
    schema_versions.c.id.in_(
        select(_newest_version).where(datasets.c.id.in_(bindparam("dataset_ids", expanding=True)))
    )
)
_DATASET_NAMES: Select[Any] = select(datasets.c.id, datasets.c.namespace, datasets.c.name).where(
    datasets.c.id.in_(bindparam("ids", expanding=True))
)


def field_inputs(
    connection: Connection, dataset_ids: Collection[int], fields: Collection[str]
) -> Sequence[Row[Any]]:
    """The distinct transformations into the fields of the datasets (every field named for
    every dataset): out_dataset_id, out_field, in_dataset_id, in_field, type, subtype,
    description, masking; by output field, then first stored first."""
    if not dataset_ids or not fields:
        return []
    parameters = {"dataset_ids": list(dataset_ids), "fields": list(fields)}
    return connection.execute(_FIELD_INPUTS, parameters).all()


def field_readers(
    connection: Connection, dataset_ids: Collection[int], fields: Collection[str]
) -> Sequence[Row[Any]]:
    """(in_dataset_id, in_field, out_dataset_id, out_field) of the column edges reading the
    fields of the datasets (every field named for every dataset), each once."""
    if not dataset_ids or not fields:
        return []
    parameters = {"dataset_ids": list(dataset_ids), "fields": list(fields)}
    return connection.execute(_FIELD_READERS, parameters).all()


def job_output_fields(connection: Connection, job_id: int) -> Sequence[Row[Any]]:
    """(out_dataset_id, out_field) the job's column edges write, each once."""
    return connection.execute(_JOB_OUTPUT_FIELDS, {"job_id": job_id}).all()


def edge_fields(connection: Connection, dataset_ids: Collection[int]) -> Sequence[Row[Any]]:
    """(dataset_id, field) for every field of the datasets a column edge writes or reads."""
    if not dataset_ids:
        return []
    return connection.execute(_EDGE_FIELDS, {"dataset_ids": list(dataset_ids)}).all()


def current_schemas(connection: Connection, dataset_ids: Collection[int]) -> dict[int, Any]:
    """The fields of each dataset's newest schema version (datasets without one left out)."""
    if not dataset_ids:
        return {}
    rows = connection.execute(_CURRENT_SCHEMAS, {"dataset_ids": list(dataset_ids)}).all()
    return {row.dataset_id: row.fields for row in rows}


def dataset_names(connection: Connection, ids: Collection[int]) -> dict[int, Row[Any]]:
    """(id, namespace, name) of the datasets, by id."""
    if not ids:
        return {}
    return {row.id: row for row in connection.execute(_DATASET_NAMES, {"ids": list(ids)})}


def count_pending_events(connection: Connection) -> int:
    """How many events are committed but not derived yet (read by the partial index)."""
    query = select(func.count()).select_from(events).where(not_(events.c.derived))
    return int(connection.execute(query).scalar_one())
