"""retention: indexes on the ages it prunes by, and what it removed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_updated_at"), ["updated_at"], unique=False)
    with op.batch_alter_table("schema_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schema_versions_event_time"), ["event_time"], unique=False
        )
    op.create_table(
        "removed_totals",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("removed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "namespace", "name", "outcome", "mode", name=op.f("pk_removed_totals")
        ),
    )
