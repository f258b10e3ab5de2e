"""The store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

The migrations in `migrations/versions/` build exactly these tables; a test compares them.
Times are event times in UTC unless a column says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only gives a column its own rowid alias when it is INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _as_utc(value: datetime) -> datetime:
    """`value` in UTC; a datetime without an offset is refused, its time zone unknown."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset itself)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            # The text SQLite's DATETIME binds ("2026-01-02 03:04:05.000006"), made in one
            # step: an ingested batch binds thousands of these.
            if value is None:
                return None
            return _as_utc(value).isoformat(" ", "microseconds")[:26]  # no "+00:00"

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(
        self, dialect: Dialect, coltype: Any
    ) -> Callable[[Any], datetime | None] | None:
        processor = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or processor is None:
            return processor
        general = processor

        def process(value: Any) -> datetime | None:
            # SQLite hands back the naive UTC text bound above: parsed with its offset in one
            # step, it is several times faster than parsed and then given its tzinfo (large
            # reads turn thousands of these). Any other text takes the general way.
            if isinstance(value, str):
                try:
                    parsed = datetime.fromisoformat(value + "+00:00")
                except ValueError:
                    pass
                else:
                    if parsed.tzinfo is not None:
                        return parsed
            return general(value)

        return process


class JSONText(TypeDecorator[Any]):
    """JSON kept as text, written and read with orjson (key order kept as it came)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    # runId|eventType|eventTime: the same run transition sent twice is one event.
    Column("run_key", String(120), unique=True),
    Column("kind", String(8), nullable=False),
    Column("event_type", String(16)),
    Column("event_time", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("namespace", String, nullable=False),
    Column("name", String, nullable=False),
    Column("run_uuid", Uuid),
    Column("payload", Text, nullable=False),
    # False from its commit until what it says is derived (runs, jobs, datasets, lineage).
    Column("derived", Boolean, nullable=False, server_default=text("true")),
    Index(None, "event_time", "id"),
    Index(None, "run_uuid"),
    Index(
        "ix_events_pending",
        "id",
        sqlite_where=text("derived = 0"),
        postgresql_where=text("NOT derived"),
    ),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("name", String, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("owner_name", String),
    Column("description", Text),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("namespace", String, ForeignKey("namespaces.name"), nullable=False),
    Column("name", String, nullable=False),
    Column("type", String(16), nullable=False, server_default="BATCH"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("description", Text),
    Column("location", Text),
    Column("facets", JSONText, nullable=False),
    Column("facet_times", JSONText, nullable=False),  # per facet: event time of its version
    Index(None, "namespace", "name", unique=True),
)

runs = Table(
    "runs",
    metadata,
    Column("uuid", Uuid, primary_key=True),
    Column("job_id", Id, ForeignKey("jobs.id"), nullable=False),
    # NEW | RUNNING | COMPLETED | FAILED | ABORTED, from the latest-ranked event.
    Column("state", String(16), nullable=False),
    Column("state_rank", Integer, nullable=False),
    Column("state_time", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("duration_ms", BigInteger),
    Column("nominal_start_time", UTCDateTime),
    Column("nominal_end_time", UTCDateTime),
    Column("parent_run_uuid", Uuid),
    Column("error_message", Text),
    Column("facets", JSONText, nullable=False),
    Column("facet_times", JSONText, nullable=False),  # per facet: event time of its version
    # Detection: NULL until the detectors have judged the finished run (the evaluator picks
    # up what is NULL, so a crash between commit and detection loses nothing).
    Column("detected_at", UTCDateTime),
    # anomaly | false_positive | confirmed: keeps flagged durations out of later baselines.
    Column("verdict", String(16)),
    # Why the job's SQL (its `sql` facet) did not parse, with the position; NULL otherwise.
    Column("sql_parse_error", Text),
    Index(None, "job_id", "created_at"),
    # A job's latest run in a state (its last success, its last failure): one index step.
    Index(None, "job_id", "state", "created_at"),
    Index(None, "parent_run_uuid"),
    Index(
        "ix_runs_undetected",
        "state_rank",
        "detected_at",
        sqlite_where=text("detected_at IS NULL"),
        postgresql_where=text("detected_at IS NULL"),
    ),
    Index(None, "state", "started_at"),
    Index(None, "updated_at"),  # retention: runs by the time of their latest event
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("namespace", String, ForeignKey("namespaces.name"), nullable=False),
    Column("name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_modified_at", UTCDateTime),
    Column("source_name", String),
    Column("description", Text),
    Column("facets", JSONText, nullable=False),
    Column("facet_times", JSONText, nullable=False),  # per facet: event time of its version
    # The newest input/output facets runs reported for it (statistics, quality results),
    # which Marquez drops and pipewarden shows with the dataset.
    Column("io_facets", JSONText, nullable=False),
    Column("io_facet_times", JSONText, nullable=False),
    Index(None, "namespace", "name", unique=True),
)

schema_versions = Table(
    "schema_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    # sha256 of the fields' names and types, nested fields included, in order.
    Column("fields_hash", String(64), nullable=False),
    Column("fields", JSONText, nullable=False),
    # The version was seen from event_time to last_seen (event times, whatever the order
    # the events arrived in).
    Column("event_time", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("run_uuid", Uuid),
    Index(None, "dataset_id", "event_time"),
    Index(None, "run_uuid"),
    Index(None, "event_time"),  # retention: versions superseded before the cutoff
)

run_io = Table(
    "run_io",
    metadata,
    Column("run_uuid", Uuid, ForeignKey("runs.uuid"), primary_key=True),
    Column("dataset_id", Id, ForeignKey("datasets.id"), primary_key=True),
    Column("direction", String(6), primary_key=True),  # input | output
    Column("row_count", BigInteger),
    Column("bytes", BigInteger),
    Column("file_count", BigInteger),
    Column("facets", JSONText, nullable=False),
    Column("facet_times", JSONText, nullable=False),
    Column("verdict", String(16)),  # as runs.verdict, for the rows written
    Index(None, "dataset_id", "direction"),
)

# The datasets each job has read or written, for lineage walks without touching runs.
job_io = Table(
    "job_io",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id"), primary_key=True),
    Column("dataset_id", Id, ForeignKey("datasets.id"), primary_key=True),
    Column("direction", String(6), primary_key=True),
    Column("last_seen", UTCDateTime, nullable=False),
    Index(None, "dataset_id", "direction"),
)

column_edges = Table(
    "column_edges",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("jobs.id"), nullable=False),
    Column("out_dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    # '' for an input that affects the whole output dataset (the facet's `dataset` list).
    Column("out_field", String, nullable=False),
    Column("in_dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    Column("in_field", String, nullable=False),
    Column("type", String(16), nullable=False),
    Column("subtype", String(32), nullable=False),
    Column("description", Text),
    Column("masking", Boolean, nullable=False),
    Column("source", String(8), nullable=False),  # facet | parsed
    Column("run_uuid", Uuid),
    Column("event_time", UTCDateTime, nullable=False),
    Index(
        "uq_column_edges_edge",
        "job_id",
        "out_dataset_id",
        "out_field",
        "in_dataset_id",
        "in_field",
        "type",
        "subtype",
        unique=True,
    ),
    Index(None, "out_dataset_id", "out_field"),
    Index(None, "in_dataset_id", "in_field"),
)

quality_assertions = Table(
    "quality_assertions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_uuid", Uuid, ForeignKey("runs.uuid"), nullable=False),
    Column("dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    Column("assertion", String, nullable=False),
    Column("column_name", String, nullable=False),  # '' for a dataset-wide assertion
    Column("success", Boolean, nullable=False),
    Column("severity", String(16)),
    Column("name", String),
    Column("description", Text),
    Column("event_time", UTCDateTime, nullable=False),
    Index(
        "uq_quality_assertions_check",
        "run_uuid",
        "dataset_id",
        "assertion",
        "column_name",
        unique=True,
    ),
    Index(None, "dataset_id", "event_time"),
)

# Every gate decision, the would-block ones of monitor mode included: the audit log and the
# record of how ready each job is to enforce. decided_at is wall time (when it was asked).
gate_decisions = Table(
    "gate_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uuid", Uuid, nullable=False, unique=True),
    Column("namespace", String, nullable=False),
    Column("job", String, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("decision", String(8), nullable=False),  # allow | warn | block
    Column("mode", String(8), nullable=False),  # monitor | enforce
    Column("effective", String(8), nullable=False),  # allow | block
    Column("reasons", JSONText, nullable=False),
    Column("plan", JSONText),  # what a POST declared; NULL when judged from stored state
    Index(None, "namespace", "job", "decided_at"),
    Index(None, "decided_at"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # kind|job|dataset|run or slot|subject: the same finding found twice (live, then on a
    # replay of the history) is stored once.
    Column("key", String, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("namespace", String, nullable=False),
    Column("job", String, nullable=False),
    Column("dataset_namespace", String),
    Column("dataset", String),
    Column("run_uuid", Uuid),
    Column("subject", String),
    Column("event_time", UTCDateTime, nullable=False),
    Column("detected_at", UTCDateTime, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("observed", Float),
    Column("expected_low", Float),
    Column("expected_high", Float),
    Column("score", Float, nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved | false_positive
    Column("message", Text, nullable=False),
    Index(None, "namespace", "job", "event_time"),
    Index(None, "dataset_namespace", "dataset", "status"),
    Index(None, "status", "kind"),
    Index(None, "event_time"),
)

# The latest expected range per job (and output dataset) and metric, for dashboards' bands.
expectations = Table(
    "expectations",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id"), primary_key=True),
    Column("dataset_id", Id, primary_key=True),  # 0 for the job's own metrics (duration)
    Column("metric", String(16), primary_key=True),  # duration | rows | bytes
    Column("event_time", UTCDateTime, nullable=False),
    Column("observed", Float),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("centre", Float, nullable=False),
    Column("learning", Boolean, nullable=False),
    Column("season", String),
)

# Finished runs the detectors have judged, per job and final state, counted as each is judged
# (once: the evaluator claims it): `pipewarden_runs_total` reads these and the evaluator's
# backlog instead of counting the runs. Retention does not lower them.
run_totals = Table(
    "run_totals",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id"), primary_key=True),
    Column("state", String(16), primary_key=True),  # COMPLETED | FAILED | ABORTED
    Column("runs", BigInteger, nullable=False),
)

# What retention removed, per series the metrics count (finished runs by state, gate
# decisions by decision and mode, schema versions), so those counters never go down.
removed_totals = Table(
    "removed_totals",
    metadata,
    Column("kind", String(16), primary_key=True),  # run | gate_decision | schema_version
    Column("namespace", String, primary_key=True),  # of the job, or of the dataset
    Column("name", String, primary_key=True),
    Column("outcome", String(16), primary_key=True),  # run state or decision; '' otherwise
    Column("mode", String(8), primary_key=True),  # a gate decision's mode; '' otherwise
    Column("removed", BigInteger, nullable=False),
)
