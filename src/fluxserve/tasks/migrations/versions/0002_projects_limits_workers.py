"""Projects get limits, an IP allow-list, a webhook signing secret and a bootstrap flag; workers
announce themselves (for the ``fluxserve_workers`` metric).

Revision ID: 0002
Revises: 0001
"""

import base64
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("max_concurrent", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("allowed_ips", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("webhook_secret", sa.String(80), nullable=False, server_default=""))
        batch.add_column(sa.Column("bootstrap", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("deletedtime", sa.Float, nullable=False, server_default="0"))
    projects = sa.table(
        "projects", sa.column("id", sa.Integer), sa.column("webhook_secret", sa.String), sa.column("name")
    )
    connection = op.get_bind()
    ids = connection.execute(sa.select(projects.c.id).order_by(projects.c.id)).scalars().all()
    for project_id in ids:  # every existing project gets its own signing secret
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        connection.execute(
            sa.update(projects).where(projects.c.id == project_id).values(webhook_secret=secret)
        )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tools", sa.JSON, nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("projects") as batch:
        for name in ("deletedtime", "bootstrap", "webhook_secret", "allowed_ips", "max_concurrent"):
            batch.drop_column(name)
