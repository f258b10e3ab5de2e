"""Reads for the API: each one an indexed lookup or range, whatever the history length."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, Select, and_, func, select

from collector.store.tables import (
    datasets,
    events,
    job_io,
    jobs,
    namespaces,
    run_io,
    runs,
    schema_versions,
)


def list_namespaces(connection: Connection, limit: int, offset: int) -> Sequence[Row[Any]]:
    query = select(namespaces).order_by(namespaces.c.name).limit(limit).offset(offset)
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


def jobs_by_id(connection: Connection, ids: Collection[int]) -> dict[int, Row[Any]]:
    if not ids:
        return {}
    rows = connection.execute(select(jobs).where(jobs.c.id.in_(ids))).all()
    return {row.id: row for row in rows}


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


def dataset_jobs(connection: Connection, dataset_ids: Collection[int]) -> Sequence[Row[Any]]:
    """(job_id, dataset_id, direction) for every job that read or wrote the datasets."""
    if not dataset_ids:
        return []
    query: Select[Any] = select(job_io.c.job_id, job_io.c.dataset_id, job_io.c.direction).where(
        job_io.c.dataset_id.in_(dataset_ids)
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


def count_events(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(events)).scalar_one())
