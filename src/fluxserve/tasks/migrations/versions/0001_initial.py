"""Initial schema: projects, tasks, outputs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("api_key", sa.String(128), nullable=False, unique=True),
        sa.Column("api_secret", sa.String(128), nullable=False, server_default=""),
        sa.Column("require_signature", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("createtime", sa.Float, nullable=False, server_default="0"),
    )
    time_columns = [
        "createtime", "accepttime", "assigntime", "preprocessstarttime", "preprocessendtime",
        "starttime", "endtime", "postprocessstarttime", "postprocessendtime", "canceltime",
    ]  # fmt: skip
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("debugoutput", sa.Text, nullable=False, server_default=""),
        sa.Column("debugerror", sa.Text, nullable=False, server_default=""),
        sa.Column("pexit", sa.String(8), nullable=False, server_default="0"),
        sa.Column("callbackurl", sa.Text, nullable=False, server_default=""),
        *[sa.Column(name, sa.Float, nullable=False, server_default="0") for name in time_columns],
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("kill_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("worker_id", sa.String(200), nullable=False, server_default=""),
        sa.Column("lease_expires_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("callback_state", sa.String(16), nullable=False, server_default="none"),
        sa.Column("callback_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("callback_next_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("ix_tasks_claim", "tasks", ["status", "id"])
    op.create_index("ix_tasks_callback", "tasks", ["callback_state", "callback_next_at"])
    op.create_table(
        "outputs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("contenttype", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("parentid", sa.String(32), nullable=False),
        sa.Column("accesskey", sa.String(64), nullable=False, unique=True),
        sa.Column("storage_key", sa.Text, nullable=False),
        sa.Column("addedtime", sa.Float, nullable=False),
        sa.Column("modifiedtime", sa.Float, nullable=False),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("contenttype", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("accesskey", sa.String(64), nullable=False, unique=True),
        sa.Column("storage_key", sa.Text, nullable=False),
        sa.Column("addedtime", sa.Float, nullable=False),
    )
    op.create_index("ix_uploads_project_name", "uploads", ["project_id", "name"])


def downgrade() -> None:
    op.drop_table("uploads")
    op.drop_table("outputs")
    op.drop_table("tasks")
    op.drop_table("projects")
