"""Cross-request batching: each task's batch key (tasks with equal non-empty keys may share one
denoising loop), and the index a worker's batch claim reads.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("batch_key", sa.String(64), nullable=False, server_default=""))
    op.create_index("ix_tasks_batch_claim", "tasks", ["status", "batch_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_batch_claim", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("batch_key")
