"""deferred derivation: events are derived after their commit, pending ones indexed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

A plain ADD COLUMN with a constant default, not a batch operation: SQLite adds it in place
instead of copying the whole events table (minutes, and twice the disk, on a large store).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("derived", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.create_index(
        "ix_events_pending",
        "events",
        ["id"],
        unique=False,
        sqlite_where=sa.text("derived = 0"),
        postgresql_where=sa.text("NOT derived"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_pending", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("derived")
