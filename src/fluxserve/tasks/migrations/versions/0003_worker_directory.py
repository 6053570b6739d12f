"""The worker directory: each worker's host, pid, device, the tools it cannot run and why, version,
threads, liveness deadline and drain flag (``fluxserve workers``, capability-aware claims).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

_COLUMNS = ("host", "pid", "device", "unavailable", "version", "threads", "expires_at", "draining")


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("host", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("pid", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("device", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("unavailable", sa.JSON, nullable=True))
        batch.add_column(sa.Column("version", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("threads", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("draining", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_workers_expires_at", "workers", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_workers_expires_at", "workers")
    with op.batch_alter_table("workers") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
