"""findings and detection

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("dataset_namespace", sa.String(), nullable=True),
        sa.Column("dataset", sa.String(), nullable=True),
        sa.Column("run_uuid", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("observed", sa.Float(), nullable=True),
        sa.Column("expected_low", sa.Float(), nullable=True),
        sa.Column("expected_high", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint("key", name=op.f("uq_findings_key")),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_findings_dataset_namespace_dataset_status"),
            ["dataset_namespace", "dataset", "status"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_findings_event_time"), ["event_time"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_findings_namespace_job_event_time"),
            ["namespace", "job", "event_time"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_findings_status_kind"), ["status", "kind"], unique=False
        )

    op.create_table(
        "expectations",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed", sa.Float(), nullable=True),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("centre", sa.Float(), nullable=False),
        sa.Column("learning", sa.Boolean(), nullable=False),
        sa.Column("season", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_expectations_job_id_jobs")),
        sa.PrimaryKeyConstraint("job_id", "dataset_id", "metric", name=op.f("pk_expectations")),
    )
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_runs_state_started_at"), ["state", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_runs_undetected",
            ["state_rank", "detected_at"],
            unique=False,
            sqlite_where=sa.text("detected_at IS NULL"),
            postgresql_where=sa.text("detected_at IS NULL"),
        )
    with op.batch_alter_table("schema_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schema_versions_run_uuid"), ["run_uuid"], unique=False)
