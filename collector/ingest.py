"""From a decoded OpenLineage event to stored facts: validate → dedupe → store → derive.

`prepare` is pure CPU work (validation, hashing) done before the writer is involved. The
writer commits the raw events with `store_pending` before anyone is told they are stored,
and derives from them (`derive_pending`) in later transactions, many events at a time;
`store_group` (or `store` for one event) does both in one transaction. Derivation depends on
event time only, never on arrival order: COMPLETE before START, or a late START, ends in
the same state as in order, and a group of events ends as they would one by one."""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, cast
from uuid import UUID

import orjson
from sqlalchemy import Connection, Row, Table

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
    InvalidEvent,
    Job,
    JobEvent,
    OutputDataset,
    RunEvent,
    parse_canonical,
    parse_datetime,
    parse_event,
)
from collector.store import writes
from collector.store.tables import datasets, jobs, run_io, runs

log = logging.getLogger(__name__)


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
    event, canonical = parse_canonical(document)
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
    writes.claim_keys(connection, (key for item in items for key in _contended(item.event)))


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
    return store_group(connection, [incoming], received_at)[0]


def store_group(
    connection: Connection, items: Sequence[Incoming], received_at: datetime
) -> list[Outcome]:
    """Store events and derive from them, in the caller's transaction; one outcome each.

    The same stored state as `store` of each event in turn, from a few statements per
    group instead of a few dozen per event: each row the events change is read (locked)
    once, changed in memory by every event in turn, and written once.
    """
    outcomes, stored = _insert(connection, items, received_at, derived=True)
    _derive(connection, stored)
    return outcomes


def store_pending(
    connection: Connection, items: Sequence[Incoming], received_at: datetime
) -> list[Outcome]:
    """Store events without deriving from them yet; one outcome each.

    They are kept as pending until `derive_pending` derives them, in a later transaction.
    """
    return _insert(connection, items, received_at, derived=False)[0]


def derive_pending(
    connection: Connection, limit: int, validated: MutableMapping[str, Incoming] | None = None
) -> int:
    """Derive from up to `limit` pending events, oldest first; how many were taken.

    Derivation depends on event time only, so deriving later, in other groups, ends in the
    state storing and deriving each event at once gives. An event found in `validated` (by
    content hash) is taken from there instead of being read and validated again. A stored
    event that no longer validates (stored by an older version) is marked derived without
    deriving from it.
    """
    rows = writes.pending_events(connection, limit)
    items: list[Incoming] = []
    for row in rows:
        known = validated.pop(row.content_hash, None) if validated is not None else None
        if known is not None:
            items.append(known)
            continue
        document = orjson.loads(row.payload)
        try:
            items.append(Incoming(parse_event(document), document, row.payload, row.content_hash))
        except InvalidEvent as invalid:
            log.error("stored event %d is not derived: it no longer validates: %s", row.id, invalid)
    claim_rows(connection, items)
    _derive(connection, items)
    writes.mark_derived(connection, [row.id for row in rows])
    return len(rows)


def _insert(
    connection: Connection, items: Sequence[Incoming], received_at: datetime, *, derived: bool
) -> tuple[list[Outcome], list[Incoming]]:
    """Insert the raw events; each one's outcome, and those stored (not duplicates)."""
    rows = [event_row(item, received_at, derived) for item in items]
    inserted = writes.insert_events(connection, rows)
    outcomes: list[Outcome] = []
    stored: list[Incoming] = []
    for item, row in zip(items, rows, strict=True):
        if row["content_hash"] in inserted:
            inserted.discard(row["content_hash"])  # a repeat later in the group is a duplicate
            stored.append(item)
            outcomes.append(Outcome.STORED)
        else:
            outcomes.append(Outcome.DUPLICATE)
    return outcomes, stored


def _derive(connection: Connection, items: Sequence[Incoming]) -> None:
    plan = _Plan()
    for item in items:
        plan.add(item)
    plan.write(connection)


def event_row(incoming: Incoming, received_at: datetime, derived: bool) -> dict[str, Any]:
    """The raw event's row in `events`."""
    event = incoming.event
    run_uuid = run_key = event_type = None
    if isinstance(event, RunEvent):
        kind, namespace, name = "run", event.job.namespace, event.job.name
        run_uuid = event.run.runId
        event_type = event.eventType.value if event.eventType else None
        run_key = f"{run_uuid}|{event_type or ''}|{event.eventTime.isoformat()}"
    elif isinstance(event, JobEvent):
        kind, namespace, name = "job", event.job.namespace, event.job.name
    else:
        kind, namespace, name = "dataset", event.dataset.namespace, event.dataset.name
    return {
        "derived": derived,
        "content_hash": incoming.content_hash,
        "event_time": event.eventTime,
        "received_at": received_at,
        "payload": incoming.payload,
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "run_uuid": run_uuid,
        "event_type": event_type,
        "run_key": run_key,
    }


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


# --- what a group of events changes ---------------------------------------------------

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

Name = tuple[str, str]  # a job's or dataset's (namespace, name)


@dataclass(frozen=True)
class _JobChange:
    at: datetime
    facets: dict[str, Any]


@dataclass(frozen=True)
class _DatasetChange:
    at: datetime
    facets: dict[str, Any]
    io_facets: dict[str, Any]  # the run's statistics and checks on it, kept with the dataset
    written: bool  # a COMPLETE output: moves the last modification time
    named_only: bool = False  # named by column lineage only: created if new, never changed


@dataclass(frozen=True)
class _RunChange:
    at: datetime
    event_type: EventType | None  # what decides the run's state: `_state_event_type`
    facets: dict[str, Any]
    job: Name  # the job a new run belongs to


@dataclass(frozen=True)
class _IoChange:
    at: datetime
    facets: dict[str, Any]


@dataclass(frozen=True)
class _SchemaSeen:
    dataset: Name
    fields: list[Any]
    at: datetime
    run_uuid: UUID | None


@dataclass(frozen=True)
class _Lineage:
    job: Name
    output: Name
    edges: list[dict[str, Any]]  # `in_dataset_id` holds the input's Name until written
    at: datetime


@dataclass
class _Plan:
    """What a group of events changes, row by row, in the order the events were stored.

    Each row is folded from its stored state by its changes in that order, which gives
    what storing the events one at a time gives; new rows get ids in order of first
    appearance, as they would one at a time.
    """

    namespaces: dict[str, datetime] = field(default_factory=dict)
    jobs: dict[Name, list[_JobChange]] = field(default_factory=dict)
    datasets: dict[Name, list[_DatasetChange]] = field(default_factory=dict)
    runs: dict[tuple[UUID], list[_RunChange]] = field(default_factory=dict)
    run_io: dict[tuple[UUID, Name, str], list[_IoChange]] = field(default_factory=dict)
    job_io: dict[tuple[Name, Name, str], datetime] = field(default_factory=dict)
    assertions: dict[tuple[UUID, Name, str, str], dict[str, Any]] = field(default_factory=dict)
    schemas: list[_SchemaSeen] = field(default_factory=list)
    lineage: list[_Lineage] = field(default_factory=list)

    def add(self, incoming: Incoming) -> None:
        event, document = incoming.event, incoming.document
        if isinstance(event, RunEvent):
            self._add_run_event(event, document)
        elif isinstance(event, JobEvent):
            self._add_job_event(event, document)
        else:
            self._dataset(event.dataset, document["dataset"], event.eventTime, None)

    def _add_run_event(self, event: RunEvent, document: dict[str, Any]) -> None:
        at, run_uuid = event.eventTime, event.run.runId
        job = self._job(event.job, document["job"], at)
        change = _RunChange(at, _state_event_type(event), _facets_of(document["run"]), job)
        self.runs.setdefault((run_uuid,), []).append(change)
        for dataset, raw in zip(event.inputs, document.get("inputs") or [], strict=True):
            name = self._dataset(dataset, raw, at, run_uuid, _io_facets(raw, "input"))
            self._io(job, event, name, "input", dataset, raw)
        written = event.eventType is EventType.COMPLETE
        for output, raw in zip(event.outputs, document.get("outputs") or [], strict=True):
            name = self._dataset(output, raw, at, run_uuid, _io_facets(raw, "output"), written)
            self._io(job, event, name, "output", output, raw)
            lineage = output.facets.columnLineage
            if lineage is not None:
                edges = self._column_edges(lineage, run_uuid, at)
                self.lineage.append(_Lineage(job, name, edges, at))

    def _add_job_event(self, event: JobEvent, document: dict[str, Any]) -> None:
        at = event.eventTime
        job = self._job(event.job, document["job"], at)
        for direction, items, raws in (
            ("input", event.inputs, document.get("inputs") or []),
            ("output", event.outputs, document.get("outputs") or []),
        ):
            for dataset, raw in zip(items, raws, strict=True):
                self._touch(job, self._dataset(dataset, raw, at, None), direction, at)

    def _job(self, job: Job, raw: dict[str, Any], at: datetime) -> Name:
        self.namespaces.setdefault(job.namespace, at)
        name = (job.namespace, job.name)
        self.jobs.setdefault(name, []).append(_JobChange(at, _facets_of(raw)))
        return name

    def _dataset(
        self,
        dataset: Dataset,
        raw: dict[str, Any],
        at: datetime,
        run_uuid: UUID | None,
        io_facets: dict[str, Any] | None = None,
        written: bool = False,
    ) -> Name:
        self.namespaces.setdefault(dataset.namespace, at)
        name = (dataset.namespace, dataset.name)
        change = _DatasetChange(at, _facets_of(raw), io_facets or {}, written)
        self.datasets.setdefault(name, []).append(change)
        if dataset.facets.schema_ is not None:
            fields = _facets_of(raw)["schema"].get("fields") or []
            self.schemas.append(_SchemaSeen(name, fields, at, run_uuid))
        return name

    def _named(self, namespace: str, name: str, at: datetime) -> Name:
        """A dataset named only by reference (column lineage), created if new."""
        self.namespaces.setdefault(namespace, at)
        key = (namespace, name)
        if key not in self.datasets:
            self.datasets[key] = [_DatasetChange(at, {}, {}, written=False, named_only=True)]
        return key

    def _io(
        self,
        job: Name,
        event: RunEvent,
        name: Name,
        direction: str,
        dataset: InputDataset | OutputDataset,
        raw: dict[str, Any],
    ) -> None:
        """A run's use of a dataset: its io facets, the counts in them, quality assertions."""
        run_uuid, at = event.run.runId, event.eventTime
        change = _IoChange(at, _io_facets(raw, direction))
        self.run_io.setdefault((run_uuid, name, direction), []).append(change)
        self._touch(job, name, direction, at)
        for assertion in _assertions(dataset):
            if not _evaluated(assertion, event):
                continue
            key = (run_uuid, name, assertion.assertion, assertion.column or "")
            if key in self.assertions:  # checked again: the result is the latest one's
                self.assertions[key] |= {"success": assertion.success, "event_time": at}
                continue
            self.assertions[key] = {
                "run_uuid": run_uuid,
                "dataset_id": name,
                "assertion": assertion.assertion,
                "column_name": assertion.column or "",
                "success": assertion.success,
                "severity": assertion.severity,
                "name": assertion.name,
                "description": assertion.description,
                "event_time": at,
            }

    def _touch(self, job: Name, dataset: Name, direction: str, at: datetime) -> None:
        seen = self.job_io.get((job, dataset, direction))
        if seen is None or seen < at:
            self.job_io[(job, dataset, direction)] = at

    def _column_edges(
        self, lineage: ColumnLineageDatasetFacet, run_uuid: UUID, at: datetime
    ) -> list[dict[str, Any]]:
        """Edge rows from a columnLineage facet, one per input field and transformation."""
        edges: dict[tuple[Any, ...], dict[str, Any]] = {}
        targets: list[tuple[str, list[InputField], ColumnLineageField | None]] = [
            (name, spec.inputFields, spec) for name, spec in lineage.fields.items()
        ]
        targets.append(("", lineage.dataset, None))
        for out_field, input_fields, spec in targets:
            for source in input_fields:
                source_name = self._named(source.namespace, source.name, at)
                for kind, subtype, description, masking in _transformations(source, spec):
                    edges[(out_field, source_name, source.field, kind, subtype)] = {
                        "out_field": out_field,
                        "in_dataset_id": source_name,
                        "in_field": source.field,
                        "type": kind,
                        "subtype": subtype,
                        "description": description,
                        "masking": masking,
                        "source": "facet",
                        "run_uuid": run_uuid,
                    }
        return list(edges.values())

    def write(self, connection: Connection) -> None:
        """Write every changed row; parents first, as the foreign keys require."""
        writes.ensure_namespaces(connection, self.namespaces)
        job_ids = _settle(connection, _JOBS, self.jobs, _fold_job)
        dataset_ids = _settle(connection, _DATASETS, self.datasets, _fold_dataset)
        _settle(connection, _RUNS, self.runs, functools.partial(_fold_run, job_ids))
        run_io_changes = {
            (run_uuid, dataset_ids[name], direction): changes
            for (run_uuid, name, direction), changes in self.run_io.items()
        }
        _settle(connection, _RUN_IO, run_io_changes, _fold_io)
        job_io_rows = [
            {
                "job_id": job_ids[job],
                "dataset_id": dataset_ids[dataset],
                "direction": direction,
                "last_seen": at,
            }
            for (job, dataset, direction), at in self.job_io.items()
        ]
        writes.touch_job_io(connection, job_io_rows)
        assertion_rows = [
            row | {"dataset_id": dataset_ids[row["dataset_id"]]} for row in self.assertions.values()
        ]
        writes.upsert_assertions(connection, assertion_rows)
        for seen in self.schemas:
            writes.record_schema(
                connection,
                dataset_ids[seen.dataset],
                fields_hash(seen.fields),
                seen.fields,
                seen.at,
                seen.run_uuid,
            )
        for lineage in self.lineage:
            edges = [
                edge | {"in_dataset_id": dataset_ids[edge["in_dataset_id"]]}
                for edge in lineage.edges
            ]
            output_id = dataset_ids[lineage.output]
            writes.replace_column_edges(
                connection, job_ids[lineage.job], output_id, edges, lineage.at
            )


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


# --- writing a group's rows -----------------------------------------------------------

K = TypeVar("K", bound=tuple[Any, ...])
C = TypeVar("C")


@dataclass(frozen=True)
class _Derived:
    """A table whose rows are derived: how they are found, locked and updated."""

    table: Table
    key: tuple[str, ...]  # what the group's changes name a row by
    primary: tuple[str, ...]  # what an UPDATE finds it by
    columns: tuple[str, ...]  # what derivation sets on a stored row
    lock: Callable[[Connection, Collection[Any]], Mapping[Any, Row[Any]]]


_JOBS = _Derived(
    jobs,
    ("namespace", "name"),
    ("id",),
    ("created_at", "updated_at", "facets", "facet_times", "type", "description", "location"),
    lambda connection, keys: writes.lock_named(connection, jobs, keys),
)
_DATASETS = _Derived(
    datasets,
    ("namespace", "name"),
    ("id",),
    (
        "created_at",
        "updated_at",
        "facets",
        "facet_times",
        "io_facets",
        "io_facet_times",
        "last_modified_at",
        "source_name",
        "description",
    ),
    lambda connection, keys: writes.lock_named(connection, datasets, keys),
)
_RUNS = _Derived(
    runs,
    ("uuid",),
    ("uuid",),
    (
        "state",
        "state_rank",
        "state_time",
        "created_at",
        "updated_at",
        "started_at",
        "ended_at",
        "duration_ms",
        "facets",
        "facet_times",
        "nominal_start_time",
        "nominal_end_time",
        "parent_run_uuid",
        "error_message",
    ),
    writes.lock_runs,
)
_RUN_IO = _Derived(
    run_io,
    ("run_uuid", "dataset_id", "direction"),
    ("run_uuid", "dataset_id", "direction"),
    ("facets", "facet_times", "row_count", "bytes", "file_count"),
    writes.lock_run_io,
)


def _settle(
    connection: Connection,
    derived: _Derived,
    changes: Mapping[K, Sequence[C]],
    fold: Callable[[K, dict[str, Any] | None, Sequence[C]], dict[str, Any]],
) -> dict[K, Any]:
    """Write the rows `changes` touch; each row's primary key (its first column), by key.

    Stored rows are locked, folded and updated when that changed them; new rows are
    inserted as folded. A row another collector inserted meanwhile is then locked and
    folded like a stored one.
    """
    if not changes:
        return {}
    stored = derived.lock(connection, changes.keys())
    primary: dict[K, Any] = {}
    fresh: dict[K, dict[str, Any]] = {}
    updates: list[dict[str, Any]] = []
    for key, items in changes.items():
        row = stored.get(key)
        if row is None:
            fresh[key] = fold(key, None, items)
            continue
        primary[key] = row._mapping[derived.primary[0]]
        updates += _update(derived, row, fold(key, dict(row._mapping), items))
    returning = tuple(dict.fromkeys(derived.key + derived.primary))
    for row in writes.insert_new(connection, derived.table, list(fresh.values()), returning):
        primary[cast(K, tuple(row._mapping[name] for name in derived.key))] = row._mapping[
            derived.primary[0]
        ]
    lost = [key for key in fresh if key not in primary]
    for key, row in derived.lock(connection, lost).items() if lost else ():
        primary[key] = row._mapping[derived.primary[0]]
        updates += _update(derived, row, fold(key, dict(row._mapping), changes[key]))
    writes.update_rows(connection, derived.table, derived.primary, updates)
    return primary


def _update(derived: _Derived, row: Row[Any], folded: dict[str, Any]) -> list[dict[str, Any]]:
    """The UPDATE parameters that make a stored row the folded one; none if it is already."""
    stored = row._mapping
    if all(_same(folded[name], stored[name]) for name in derived.columns):
        return []
    keys = {f"key_{name}": stored[name] for name in derived.primary}
    return [keys | {name: folded[name] for name in derived.columns}]


def _same(value: Any, stored: Any) -> bool:
    """Whether writing `value` would store what is stored (JSON compared as written)."""
    if isinstance(value, dict | list):
        return orjson.dumps(value) == orjson.dumps(stored)
    return bool(value == stored)


def _fold_job(
    key: Name, stored: dict[str, Any] | None, changes: Sequence[_JobChange]
) -> dict[str, Any]:
    row = stored if stored is not None else _new_job(key, changes[0].at)
    for change in changes:
        at = change.at
        row["facets"], row["facet_times"] = merge_facets(
            row["facets"], row["facet_times"], change.facets, at
        )
        row["created_at"] = min(row["created_at"], at)
        row["updated_at"] = max(row["updated_at"], at)
    processing = _field(row["facets"], "jobType", "processingType")
    row["type"] = processing.upper() if isinstance(processing, str) else "BATCH"
    row["description"] = _field(row["facets"], "documentation", "description")
    row["location"] = _field(row["facets"], "sourceCodeLocation", "url")
    return row


def _new_job(key: Name, at: datetime) -> dict[str, Any]:
    return {
        "namespace": key[0],
        "name": key[1],
        "created_at": at,
        "updated_at": at,
        "facets": {},
        "facet_times": {},
    }


def _fold_dataset(
    key: Name, stored: dict[str, Any] | None, changes: Sequence[_DatasetChange]
) -> dict[str, Any]:
    row = stored if stored is not None else _new_dataset(key, changes[0].at)
    named_only = True
    for change in changes:
        if change.named_only:
            continue
        named_only, at = False, change.at
        row["facets"], row["facet_times"] = merge_facets(
            row["facets"], row["facet_times"], change.facets, at
        )
        row["io_facets"], row["io_facet_times"] = merge_facets(
            row["io_facets"], row["io_facet_times"], change.io_facets, at
        )
        row["created_at"] = min(row["created_at"], at)
        row["updated_at"] = max(row["updated_at"], at)
        modified = row["last_modified_at"]
        if change.written and (modified is None or modified < at):
            row["last_modified_at"] = at
    if not named_only:
        row["source_name"] = _field(row["facets"], "dataSource", "name")
        row["description"] = _field(row["facets"], "documentation", "description")
    return row


def _new_dataset(key: Name, at: datetime) -> dict[str, Any]:
    empty = {"last_modified_at": None, "source_name": None, "description": None}
    return {"namespace": key[0], "name": key[1], **writes.new_dataset(at), **empty}


def _fold_run(
    job_ids: Mapping[Name, int],
    key: tuple[UUID],
    stored: dict[str, Any] | None,
    changes: Sequence[_RunChange],
) -> dict[str, Any]:
    row = stored if stored is not None else _new_run(key[0], job_ids[changes[0].job], changes[0])
    for change in changes:
        _change_run(row, change)
    facets = row["facets"]
    parent = _field(facets, "parent", "run", "runId")
    row["nominal_start_time"] = _time_field(facets, "nominalTime", "nominalStartTime")
    row["nominal_end_time"] = _time_field(facets, "nominalTime", "nominalEndTime")
    row["parent_run_uuid"] = UUID(parent) if parent else None
    row["error_message"] = _field(facets, "errorMessage", "message")
    return row


def _new_run(uuid: UUID, job_id: int, first: _RunChange) -> dict[str, Any]:
    state, rank = _STATE_OF.get(first.event_type, _NO_STATE)
    return {
        "uuid": uuid,
        "job_id": job_id,
        "state": state,
        "state_rank": rank,
        "state_time": first.at,
        "created_at": first.at,
        "updated_at": first.at,
        "started_at": None,
        "ended_at": None,
        "duration_ms": None,
        "facets": {},
        "facet_times": {},
    }


def _change_run(row: dict[str, Any], change: _RunChange) -> None:
    """One event's effect on a run: times, state by rank and event time, facets."""
    at = change.at
    state, rank = _STATE_OF.get(change.event_type, _NO_STATE)
    row["created_at"] = min(row["created_at"], at)
    row["updated_at"] = max(row["updated_at"], at)
    if change.event_type in (EventType.START, EventType.RUNNING):
        row["started_at"] = at if row["started_at"] is None else min(row["started_at"], at)
    if (rank, at) >= (row["state_rank"], row["state_time"]):
        row |= {"state": state, "state_rank": rank, "state_time": at}
        if rank == 2:
            row["ended_at"] = at
    started_at, ended_at = row["started_at"], row["ended_at"]
    if started_at is not None and ended_at is not None:
        row["duration_ms"] = max(0, int((ended_at - started_at).total_seconds() * 1000))
    row["facets"], row["facet_times"] = merge_facets(
        row["facets"], row["facet_times"], change.facets, at
    )


def _fold_io(
    key: tuple[UUID, int, str], stored: dict[str, Any] | None, changes: Sequence[_IoChange]
) -> dict[str, Any]:
    row = stored if stored is not None else _new_io(key)
    for change in changes:
        row["facets"], row["facet_times"] = merge_facets(
            row["facets"], row["facet_times"], change.facets, change.at
        )
    statistics = "inputStatistics" if key[2] == "input" else "outputStatistics"
    row["row_count"] = _field(row["facets"], statistics, "rowCount")
    row["bytes"] = _field(row["facets"], statistics, "size")
    row["file_count"] = _field(row["facets"], statistics, "fileCount")
    return row


def _new_io(key: tuple[UUID, int, str]) -> dict[str, Any]:
    run_uuid, dataset_id, direction = key
    return {
        "run_uuid": run_uuid,
        "dataset_id": dataset_id,
        "direction": direction,
        "facets": {},
        "facet_times": {},
    }


def fields_hash(fields: list[Any]) -> str:
    """A schema's identity: names and types of its fields, nested ones included, in order."""

    def shape(items: list[Any]) -> list[Any]:
        return [
            [item.get("name"), item.get("type"), shape(item.get("fields") or [])]
            for item in items
            if isinstance(item, dict)
        ]

    return hashlib.sha256(orjson.dumps(shape(fields))).hexdigest()
