"""run totals: finished runs counted as they are judged; a job's latest run in a state

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# What a store already holds: its judged finished runs and the finished runs retention removed.
_BACKFILL = """
INSERT INTO run_totals (job_id, state, runs)
SELECT job_id, state, sum(runs) FROM (
    SELECT job_id, state, count(*) AS runs FROM runs
    WHERE state_rank = 2 AND detected_at IS NOT NULL
    GROUP BY job_id, state
    UNION ALL
    SELECT jobs.id, removed_totals.outcome, removed_totals.removed
    FROM removed_totals
    JOIN jobs ON jobs.namespace = removed_totals.namespace AND jobs.name = removed_totals.name
    WHERE removed_totals.kind = 'run'
) AS counted
GROUP BY job_id, state
"""


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "run_totals",
        sa.Column("job_id", id_type, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_run_totals_job_id_jobs")),
        sa.PrimaryKeyConstraint("job_id", "state", name=op.f("pk_run_totals")),
    )
    op.execute(_BACKFILL)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runs_job_id_state_created_at"),
            ["job_id", "state", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_job_id_state_created_at"))
    op.drop_table("run_totals")
