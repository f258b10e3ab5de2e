"""From a decoded OpenLineage event to stored facts: validate → dedupe → store → derive.

`prepare` is pure CPU work (validation, hashing) done before the writer is involved;
`store` runs inside the writer's transaction, so the raw event and everything derived
from it are committed together. Derivation depends on event time only, never on arrival
order: COMPLETE before START, or a late START, ends in the same state as in order.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Connection

from collector.openlineage import (
    Assertion,
    ColumnLineageDatasetFacet,
    ColumnLineageField,
    Dataset,
    DatasetEvent,
    Event,
    EventType,
    InputDataset,
    InputField,
    Job,
    JobEvent,
    OutputDataset,
    RunEvent,
    parse_datetime,
    parse_event,
)
from collector.store import writes
from collector.store.tables import datasets, jobs, run_io, runs


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


@dataclass(frozen=True)
class Incoming:
    """A validated event with the exact JSON that will be stored and its content hash."""

    event: Event
    document: dict[str, Any]
    payload: str
    content_hash: str


def prepare(document: Any, raw: bytes | None = None) -> Incoming:
    """Validate a decoded JSON document; raises `InvalidEvent` naming field and problem.

    `raw` is the event's JSON as received (valid UTF-8), kept as the stored payload so it
    reads back exactly as sent; without it the document is serialised again.
    """
    event = parse_event(document)
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    payload = raw.decode() if raw is not None else orjson.dumps(document).decode()
    return Incoming(
        event=event,
        document=document,
        payload=payload.strip(),
        content_hash=hashlib.sha256(canonical).hexdigest(),
    )


def claim_rows(connection: Connection, items: Sequence[Incoming]) -> None:
    """Claim, before storing `items` in this transaction, the shared rows they will lock.

    Collectors sharing a PostgreSQL database then take those rows in one global order, so
    their transactions queue behind each other instead of deadlocking.
    """
    writes.claim_keys(connection, {key for item in items for key in _contended(item.event)})


def _contended(event: Event) -> Iterator[str]:
    """Names of the rows storing `event` locks that other events lock too."""
    if isinstance(event, DatasetEvent):
        yield _dataset_key(event.dataset.namespace, event.dataset.name)
        return
    yield f"job|{event.job.namespace}|{event.job.name}"
    for dataset in [*event.inputs, *event.outputs]:
        yield _dataset_key(dataset.namespace, dataset.name)
    if isinstance(event, RunEvent):
        yield f"run|{event.run.runId}"
        for output in event.outputs:
            lineage = output.facets.columnLineage
            if lineage is not None:  # the datasets its input fields name are locked too
                specs = [spec.inputFields for spec in lineage.fields.values()]
                for source in itertools.chain(lineage.dataset, *specs):
                    yield _dataset_key(source.namespace, source.name)


def _dataset_key(namespace: str, name: str) -> str:
    return f"dataset|{namespace}|{name}"


def store(connection: Connection, incoming: Incoming, received_at: datetime) -> Outcome:
    """Store one event and derive from it, in the caller's transaction."""
    if not writes.insert_event(connection, _event_row(incoming, received_at)):
        return Outcome.DUPLICATE
    event, document = incoming.event, incoming.document
    if isinstance(event, RunEvent):
        _derive_run_event(connection, event, document)
    elif isinstance(event, JobEvent):
        _derive_job_event(connection, event, document)
    else:
        _derive_dataset_event(connection, event, document)
    return Outcome.STORED


def _event_row(incoming: Incoming, received_at: datetime) -> dict[str, Any]:
    event = incoming.event
    row: dict[str, Any] = {
        "content_hash": incoming.content_hash,
        "event_time": event.eventTime,
        "received_at": received_at,
        "payload": incoming.payload,
        "run_key": None,
        "run_uuid": None,
        "event_type": None,
    }
    if isinstance(event, RunEvent):
        event_type = event.eventType.value if event.eventType else ""
        row |= {
            "kind": "run",
            "namespace": event.job.namespace,
            "name": event.job.name,
            "run_uuid": event.run.runId,
            "event_type": event.eventType.value if event.eventType else None,
            "run_key": f"{event.run.runId}|{event_type}|{event.eventTime.isoformat()}",
        }
    elif isinstance(event, JobEvent):
        row |= {"kind": "job", "namespace": event.job.namespace, "name": event.job.name}
    else:
        row |= {
            "kind": "dataset",
            "namespace": event.dataset.namespace,
            "name": event.dataset.name,
        }
    return row


# --- facets ---------------------------------------------------------------------------


def merge_facets(
    facets: dict[str, Any], times: dict[str, str], incoming: dict[str, Any], at: datetime
) -> tuple[dict[str, Any], dict[str, str]]:
    """Facets after an event at `at`: for each facet the newest event's version wins.

    `times` keeps, per facet, the event time of the version held (or of its deletion by
    `_deleted: true`), so the result is the same whatever order the events arrive in.
    """
    if not incoming:
        return facets, times
    facets, times = dict(facets), dict(times)
    stamp = _stamp(at)
    for key, value in incoming.items():
        if times.get(key, "") > stamp:
            continue
        times[key] = stamp
        if isinstance(value, dict) and value.get("_deleted") is True:
            facets.pop(key, None)
        else:
            facets[key] = value
    return facets, times


def _stamp(at: datetime) -> str:
    """A UTC time as text that sorts as the time does."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _facets_of(raw: Any, key: str = "facets") -> dict[str, Any]:
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, dict) else {}


def _field(facets: dict[str, Any], *path: str) -> Any:
    """A value inside stored facets (validated on the way in), or None."""
    value: Any = facets
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _time_field(facets: dict[str, Any], *path: str) -> datetime | None:
    value = _field(facets, *path)
    return None if value is None else parse_datetime(value)


# --- run events -----------------------------------------------------------------------

# Marquez's run states, and how strongly an event type decides the state: a terminal
# event outranks START/RUNNING whatever order they arrive in.
_STATE_OF: dict[EventType | None, tuple[str, int]] = {
    EventType.START: ("RUNNING", 1),
    EventType.RUNNING: ("RUNNING", 1),
    EventType.COMPLETE: ("COMPLETED", 2),
    EventType.FAIL: ("FAILED", 2),
    EventType.ABORT: ("ABORTED", 2),
}
_NO_STATE = ("NEW", 0)


def _derive_run_event(connection: Connection, event: RunEvent, document: dict[str, Any]) -> None:
    at = event.eventTime
    job_id = _derive_job(connection, event.job, document["job"], at)
    run_uuid = event.run.runId
    _derive_run(connection, event, _facets_of(document["run"]), job_id)
    dataset_ids: dict[tuple[str, str], int] = {}
    for dataset, raw in zip(event.inputs, document.get("inputs") or [], strict=True):
        dataset_id = _derive_dataset(
            connection, dataset, raw, at, run_uuid, dataset_ids, _io_facets(raw, "input")
        )
        _derive_io(connection, job_id, event, dataset_id, "input", dataset, raw)
    written = event.eventType is EventType.COMPLETE
    for output, raw in zip(event.outputs, document.get("outputs") or [], strict=True):
        dataset_id = _derive_dataset(
            connection, output, raw, at, run_uuid, dataset_ids, _io_facets(raw, "output"), written
        )
        _derive_io(connection, job_id, event, dataset_id, "output", output, raw)
        lineage = output.facets.columnLineage
        if lineage is not None:
            edges = _column_edges(connection, lineage, run_uuid, at, dataset_ids)
            writes.replace_column_edges(connection, job_id, dataset_id, edges, at)


def _derive_run(
    connection: Connection, event: RunEvent, raw_facets: dict[str, Any], job_id: int
) -> None:
    at = event.eventTime
    state, rank = _STATE_OF.get(_state_event_type(event), _NO_STATE)
    new_run = {
        "job_id": job_id,
        "state": state,
        "state_rank": rank,
        "state_time": at,
        "created_at": at,
        "updated_at": at,
        "facets": {},
        "facet_times": {},
    }
    row, _ = writes.lock_run(connection, event.run.runId, new_run)
    changes: dict[str, Any] = {
        "created_at": min(row.created_at, at),
        "updated_at": max(row.updated_at, at),
    }
    started_at, ended_at = row.started_at, row.ended_at
    if event.eventType in (EventType.START, EventType.RUNNING):
        started_at = at if started_at is None else min(started_at, at)
    if (rank, at) >= (row.state_rank, row.state_time):
        changes |= {"state": state, "state_rank": rank, "state_time": at}
        if rank == 2:
            ended_at = at
    if started_at is not None and ended_at is not None:
        changes["duration_ms"] = max(0, int((ended_at - started_at).total_seconds() * 1000))
    changes |= {"started_at": started_at, "ended_at": ended_at}

    facets, times = merge_facets(row.facets, row.facet_times, raw_facets, at)
    parent = _field(facets, "parent", "run", "runId")
    changes |= {
        "facets": facets,
        "facet_times": times,
        "nominal_start_time": _time_field(facets, "nominalTime", "nominalStartTime"),
        "nominal_end_time": _time_field(facets, "nominalTime", "nominalEndTime"),
        "parent_run_uuid": UUID(parent) if parent else None,
        "error_message": _field(facets, "errorMessage", "message"),
    }
    writes.update_row(connection, runs, runs.c.uuid == event.run.runId, **changes)


def _derive_io(
    connection: Connection,
    job_id: int,
    event: RunEvent,
    dataset_id: int,
    direction: str,
    dataset: InputDataset | OutputDataset,
    raw: dict[str, Any],
) -> None:
    """A run's use of a dataset: its io facets, the counts in them, quality assertions."""
    run_uuid, at = event.run.runId, event.eventTime
    io_facets = _io_facets(raw, direction)
    statistics_key = "inputStatistics" if direction == "input" else "outputStatistics"
    row = writes.lock_run_io(connection, run_uuid, dataset_id, direction)
    facets, times = merge_facets(row.facets, row.facet_times, io_facets, at)
    writes.update_row(
        connection,
        run_io,
        (run_io.c.run_uuid == run_uuid)
        & (run_io.c.dataset_id == dataset_id)
        & (run_io.c.direction == direction),
        facets=facets,
        facet_times=times,
        row_count=_field(facets, statistics_key, "rowCount"),
        bytes=_field(facets, statistics_key, "size"),
        file_count=_field(facets, statistics_key, "fileCount"),
    )
    writes.touch_job_io(connection, job_id, dataset_id, direction, at)
    rows = [
        {
            "run_uuid": run_uuid,
            "dataset_id": dataset_id,
            "assertion": assertion.assertion,
            "column_name": assertion.column or "",
            "success": assertion.success,
            "severity": assertion.severity,
            "name": assertion.name,
            "description": assertion.description,
            "event_time": at,
        }
        for assertion in _assertions(dataset)
        if _evaluated(assertion, event)
    ]
    writes.upsert_assertions(connection, rows)


# --- data-quality results -------------------------------------------------------------

_DBT_PRODUCER = "/integration/dbt"


def _assertions(dataset: InputDataset | OutputDataset) -> list[Assertion]:
    """The checks reported on a dataset, once each: as an input facet, a dataset facet or both
    (dbt-ol sends the same facet in both places)."""
    facets = [dataset.facets.dataQualityAssertions]
    if isinstance(dataset, InputDataset):
        facets.insert(0, dataset.inputFacets.dataQualityAssertions)
    unique: dict[tuple[str, str], Assertion] = {}
    for facet in facets:
        for assertion in facet.assertions if facet is not None else []:
            unique.setdefault((assertion.assertion, assertion.column or ""), assertion)
    return list(unique.values())


def _evaluated(assertion: Assertion, event: RunEvent) -> bool:
    """Whether a reported check ran, so that its `success` says something about the data.

    A check reported by an ABORT event did not run: dbt-ol's structured-log mode reports a
    test dbt skipped that way. Its default mode reports a skipped test (after an upstream
    failure) as failed, with no failure count in `actual`, which every test that ran has.
    """
    if event.eventType is EventType.ABORT:
        return False
    if assertion.success or _DBT_PRODUCER not in event.producer:
        return True
    return (assertion.model_extra or {}).get("actual") is not None


def _state_event_type(event: RunEvent) -> EventType | None:
    """The event type that decides the run's state.

    dbt-ol's default mode reports the tests of a model dbt skipped as a failed test run; none
    of its checks ran, so the run is kept ABORTED (skipped), as dbt-ol's structured-log mode
    reports a skipped node, and not as a failure.
    """
    if event.eventType is not EventType.FAIL:
        return event.eventType
    checks = [assertion for dataset in event.inputs for assertion in _assertions(dataset)]
    if checks and not any(_evaluated(assertion, event) for assertion in checks):
        return EventType.ABORT
    return event.eventType


def _io_facets(raw: dict[str, Any], direction: str) -> dict[str, Any]:
    """A run's facets on its use of a dataset: `inputFacets` or `outputFacets`."""
    return _facets_of(raw, "inputFacets" if direction == "input" else "outputFacets")


def _column_edges(
    connection: Connection,
    lineage: ColumnLineageDatasetFacet,
    run_uuid: UUID,
    at: datetime,
    dataset_ids: dict[tuple[str, str], int],
) -> list[dict[str, Any]]:
    """Edge rows from a columnLineage facet, one per input field and transformation."""
    edges: dict[tuple[Any, ...], dict[str, Any]] = {}
    targets: list[tuple[str, list[InputField], ColumnLineageField | None]] = [
        (name, spec.inputFields, spec) for name, spec in lineage.fields.items()
    ]
    targets.append(("", lineage.dataset, None))
    for out_field, input_fields, spec in targets:
        for source in input_fields:
            in_id = _dataset_id(connection, source.namespace, source.name, at, dataset_ids)
            for kind, subtype, description, masking in _transformations(source, spec):
                edges[(out_field, in_id, source.field, kind, subtype)] = {
                    "out_field": out_field,
                    "in_dataset_id": in_id,
                    "in_field": source.field,
                    "type": kind,
                    "subtype": subtype,
                    "description": description,
                    "masking": masking,
                    "source": "facet",
                    "run_uuid": run_uuid,
                }
    return list(edges.values())


def _transformations(
    source: InputField, spec: ColumnLineageField | None
) -> list[tuple[str, str, str | None, bool]]:
    if source.transformations:
        return [
            (t.type.upper(), (t.subtype or "").upper(), t.description, bool(t.masking))
            for t in source.transformations
        ]
    # Before columnLineage 1-2-0 a field carried one transformationType / description.
    legacy = ((spec and spec.transformationType) or "").upper()
    description = spec.transformationDescription if spec else None
    if legacy in {"IDENTITY", "TRANSFORMATION", "AGGREGATION"}:
        return [("DIRECT", legacy, description, False)]
    return [("DIRECT", "", description, legacy == "MASKED")]


# --- jobs and datasets ----------------------------------------------------------------


def _derive_job(connection: Connection, job: Job, raw: dict[str, Any], at: datetime) -> int:
    writes.ensure_namespace(connection, job.namespace, at)
    new_job = {"created_at": at, "updated_at": at, "facets": {}, "facet_times": {}}
    row, _ = writes.lock_job(connection, job.namespace, job.name, new_job)
    facets, times = merge_facets(row.facets, row.facet_times, _facets_of(raw), at)
    processing = _field(facets, "jobType", "processingType")
    writes.update_row(
        connection,
        jobs,
        jobs.c.id == row.id,
        created_at=min(row.created_at, at),
        updated_at=max(row.updated_at, at),
        facets=facets,
        facet_times=times,
        type=processing.upper() if isinstance(processing, str) else "BATCH",
        description=_field(facets, "documentation", "description"),
        location=_field(facets, "sourceCodeLocation", "url"),
    )
    return int(row.id)


def _dataset_id(
    connection: Connection,
    namespace: str,
    name: str,
    at: datetime,
    known: dict[tuple[str, str], int],
) -> int:
    """The id of a dataset named only by reference (column lineage), created if new."""
    if (namespace, name) not in known:
        known[(namespace, name)] = writes.ensure_dataset(connection, namespace, name, at)
    return known[(namespace, name)]


def _derive_dataset(
    connection: Connection,
    dataset: Dataset,
    raw: dict[str, Any],
    at: datetime,
    run_uuid: UUID | None,
    known: dict[tuple[str, str], int],
    io_facets: dict[str, Any] | None = None,
    written: bool = False,
) -> int:
    """The dataset's row after this event, in one locked read-modify-write.

    `io_facets` (the run's statistics and checks on it) are kept with the dataset, which
    Marquez does not do; `written` (a COMPLETE output) moves its last modification time.
    """
    writes.ensure_namespace(connection, dataset.namespace, at)
    row, _ = writes.lock_dataset(
        connection, dataset.namespace, dataset.name, writes.new_dataset(at)
    )
    known[(dataset.namespace, dataset.name)] = int(row.id)
    facets, times = merge_facets(row.facets, row.facet_times, _facets_of(raw), at)
    kept, kept_times = merge_facets(row.io_facets, row.io_facet_times, io_facets or {}, at)
    modified = row.last_modified_at
    if written and (modified is None or modified < at):
        modified = at
    writes.update_row(
        connection,
        datasets,
        datasets.c.id == row.id,
        created_at=min(row.created_at, at),
        updated_at=max(row.updated_at, at),
        facets=facets,
        facet_times=times,
        io_facets=kept,
        io_facet_times=kept_times,
        last_modified_at=modified,
        source_name=_field(facets, "dataSource", "name"),
        description=_field(facets, "documentation", "description"),
    )
    if dataset.facets.schema_ is not None:
        raw_fields = _facets_of(raw)["schema"].get("fields") or []
        writes.record_schema(
            connection, int(row.id), fields_hash(raw_fields), raw_fields, at, run_uuid
        )
    return int(row.id)


def fields_hash(fields: list[Any]) -> str:
    """A schema's identity: names and types of its fields, nested ones included, in order."""

    def shape(items: list[Any]) -> list[Any]:
        return [
            [item.get("name"), item.get("type"), shape(item.get("fields") or [])]
            for item in items
            if isinstance(item, dict)
        ]

    return hashlib.sha256(orjson.dumps(shape(fields))).hexdigest()


def _derive_job_event(connection: Connection, event: JobEvent, document: dict[str, Any]) -> None:
    at = event.eventTime
    job_id = _derive_job(connection, event.job, document["job"], at)
    known: dict[tuple[str, str], int] = {}
    for direction, items, raws in (
        ("input", event.inputs, document.get("inputs") or []),
        ("output", event.outputs, document.get("outputs") or []),
    ):
        for dataset, raw in zip(items, raws, strict=True):
            dataset_id = _derive_dataset(connection, dataset, raw, at, None, known)
            writes.touch_job_io(connection, job_id, dataset_id, direction, at)


def _derive_dataset_event(
    connection: Connection, event: DatasetEvent, document: dict[str, Any]
) -> None:
    _derive_dataset(connection, event.dataset, document["dataset"], event.eventTime, None, {})
