"""SQLAlchemy Core tables. Changes go through an Alembic migration in tasks/migrations/versions."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("api_key", sa.String(128), nullable=False, unique=True),
    sa.Column("api_secret", sa.String(128), nullable=False, server_default=""),
    sa.Column("require_signature", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("createtime", sa.Float, nullable=False, server_default="0"),
    sa.Column("max_concurrent", sa.Integer, nullable=False, server_default="0"),  # 0 = no limit
    sa.Column("allowed_ips", sa.Text, nullable=False, server_default=""),  # comma-separated CIDRs
    sa.Column("webhook_secret", sa.String(80), nullable=False, server_default=""),  # whsec_…
    sa.Column("bootstrap", sa.Boolean, nullable=False, server_default=sa.false()),  # the settings' project
    sa.Column("deletedtime", sa.Float, nullable=False, server_default="0"),  # > 0: deleted, keys revoked
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("tool", sa.String(200), nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),  # typed values the engine receives
    sa.Column("parameters", sa.JSON, nullable=False),  # the same as strings, echoed on the wire
    sa.Column("files", sa.JSON, nullable=False),  # input name -> storage key of an uploaded file
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("debugoutput", sa.Text, nullable=False, server_default=""),
    sa.Column("debugerror", sa.Text, nullable=False, server_default=""),
    sa.Column("pexit", sa.String(8), nullable=False, server_default="0"),
    sa.Column("callbackurl", sa.Text, nullable=False, server_default=""),
    sa.Column("createtime", sa.Float, nullable=False, server_default="0"),
    sa.Column("accepttime", sa.Float, nullable=False, server_default="0"),
    sa.Column("assigntime", sa.Float, nullable=False, server_default="0"),
    sa.Column("preprocessstarttime", sa.Float, nullable=False, server_default="0"),
    sa.Column("preprocessendtime", sa.Float, nullable=False, server_default="0"),
    sa.Column("starttime", sa.Float, nullable=False, server_default="0"),
    sa.Column("endtime", sa.Float, nullable=False, server_default="0"),
    sa.Column("postprocessstarttime", sa.Float, nullable=False, server_default="0"),
    sa.Column("postprocessendtime", sa.Float, nullable=False, server_default="0"),
    sa.Column("canceltime", sa.Float, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("kill_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("worker_id", sa.String(200), nullable=False, server_default=""),
    sa.Column("lease_expires_at", sa.Float, nullable=False, server_default="0"),
    sa.Column("callback_state", sa.String(16), nullable=False, server_default="none"),
    sa.Column("callback_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("callback_next_at", sa.Float, nullable=False, server_default="0"),
    sa.Column("batch_key", sa.String(64), nullable=False, server_default=""),  # catalog/batching.py
    sa.Index("ix_tasks_claim", "status", "id"),
    sa.Index("ix_tasks_batch_claim", "status", "batch_key", "id"),
    sa.Index("ix_tasks_callback", "callback_state", "callback_next_at"),
)

outputs = sa.Table(
    "outputs",
    metadata,
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

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("contenttype", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("accesskey", sa.String(64), nullable=False, unique=True),
    sa.Column("storage_key", sa.Text, nullable=False),
    sa.Column("addedtime", sa.Float, nullable=False),
    sa.Index("ix_uploads_project_name", "project_id", "name"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),  # host:pid:random, as in tasks.worker_id
    sa.Column("tools", sa.JSON, nullable=False),  # the tools this worker can run (and claims)
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),  # heartbeat; stale rows are not counted
    # Added by 0003 (worker directory, tasks/workers.py):
    sa.Column("host", sa.String(255), nullable=False, server_default=""),
    sa.Column("pid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("device", sa.String(64), nullable=False, server_default=""),
    sa.Column("unavailable", sa.JSON, nullable=True),  # tool slug -> why this worker cannot run it
    sa.Column("version", sa.String(32), nullable=False, server_default=""),
    sa.Column("threads", sa.Integer, nullable=False, server_default="1"),
    sa.Column("expires_at", sa.Float, nullable=False, server_default="0", index=True),  # live until then
    sa.Column("draining", sa.Boolean, nullable=False, server_default=sa.false()),
)
