"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("run_key", sa.String(length=120), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("run_uuid", sa.Uuid(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_events_content_hash")),
        sa.UniqueConstraint("run_key", name=op.f("uq_events_run_key")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_event_time_id"), ["event_time", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_events_run_uuid"), ["run_uuid"], unique=False)

    op.create_table(
        "namespaces",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_name", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_namespaces")),
    )
    op.create_table(
        "datasets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_name", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("facets", sa.Text(), nullable=False),
        sa.Column("facet_times", sa.Text(), nullable=False),
        sa.Column("io_facets", sa.Text(), nullable=False),
        sa.Column("io_facet_times", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace"], ["namespaces.name"], name=op.f("fk_datasets_namespace_namespaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_datasets_namespace_name"), ["namespace", "name"], unique=True
        )

    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("type", sa.String(length=16), server_default="BATCH", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("facets", sa.Text(), nullable=False),
        sa.Column("facet_times", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace"], ["namespaces.name"], name=op.f("fk_jobs_namespace_namespaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jobs_namespace_name"), ["namespace", "name"], unique=True
        )

    op.create_table(
        "column_edges",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "out_dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("out_field", sa.String(), nullable=False),
        sa.Column(
            "in_dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("in_field", sa.String(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("subtype", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("masking", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("run_uuid", sa.Uuid(), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["in_dataset_id"], ["datasets.id"], name=op.f("fk_column_edges_in_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_column_edges_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["out_dataset_id"],
            ["datasets.id"],
            name=op.f("fk_column_edges_out_dataset_id_datasets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_column_edges")),
    )
    with op.batch_alter_table("column_edges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_column_edges_in_dataset_id_in_field"),
            ["in_dataset_id", "in_field"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_column_edges_out_dataset_id_out_field"),
            ["out_dataset_id", "out_field"],
            unique=False,
        )
        batch_op.create_index(
            "uq_column_edges_edge",
            [
                "job_id",
                "out_dataset_id",
                "out_field",
                "in_dataset_id",
                "in_field",
                "type",
                "subtype",
            ],
            unique=True,
        )

    op.create_table(
        "job_io",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("direction", sa.String(length=6), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_job_io_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_io_job_id_jobs")),
        sa.PrimaryKeyConstraint("job_id", "dataset_id", "direction", name=op.f("pk_job_io")),
    )
    with op.batch_alter_table("job_io", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_io_dataset_id_direction"), ["dataset_id", "direction"], unique=False
        )

    op.create_table(
        "runs",
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_rank", sa.Integer(), nullable=False),
        sa.Column("state_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("nominal_start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nominal_end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parent_run_uuid", sa.Uuid(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("facets", sa.Text(), nullable=False),
        sa.Column("facet_times", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_runs_job_id_jobs")),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runs_job_id_created_at"), ["job_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_runs_parent_run_uuid"), ["parent_run_uuid"], unique=False
        )

    op.create_table(
        "schema_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("fields_hash", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_uuid", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_schema_versions_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_versions")),
    )
    with op.batch_alter_table("schema_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schema_versions_dataset_id_event_time"),
            ["dataset_id", "event_time"],
            unique=False,
        )

    op.create_table(
        "quality_assertions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_uuid", sa.Uuid(), nullable=False),
        sa.Column(
            "dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("assertion", sa.String(), nullable=False),
        sa.Column("column_name", sa.String(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_quality_assertions_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.uuid"], name=op.f("fk_quality_assertions_run_uuid_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_assertions")),
    )
    with op.batch_alter_table("quality_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quality_assertions_dataset_id_event_time"),
            ["dataset_id", "event_time"],
            unique=False,
        )
        batch_op.create_index(
            "uq_quality_assertions_check",
            ["run_uuid", "dataset_id", "assertion", "column_name"],
            unique=True,
        )

    op.create_table(
        "run_io",
        sa.Column("run_uuid", sa.Uuid(), nullable=False),
        sa.Column(
            "dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("direction", sa.String(length=6), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("file_count", sa.BigInteger(), nullable=True),
        sa.Column("facets", sa.Text(), nullable=False),
        sa.Column("facet_times", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_run_io_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(["run_uuid"], ["runs.uuid"], name=op.f("fk_run_io_run_uuid_runs")),
        sa.PrimaryKeyConstraint("run_uuid", "dataset_id", "direction", name=op.f("pk_run_io")),
    )
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_io_dataset_id_direction"), ["dataset_id", "direction"], unique=False
        )
