"""TaskStore: every read and state change of tasks, on SQLAlchemy Core.

Runs on SQLite (the embedded default, in WAL mode) and PostgreSQL with the same statements. Each
state change is one conditional UPDATE (``WHERE status = … AND worker_id = …``) so two workers, a
sweeper and the API can never both win a race: the claim picks the oldest queued row with
``FOR UPDATE SKIP LOCKED`` (ignored by SQLite, where the single-statement UPDATE is atomic).
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from importlib import resources
from typing import Any

import sqlalchemy as sa

from fluxserve.errors import (
    ConcurrencyLimitError,
    ConflictError,
    NotCancellableError,
    NotKillableError,
    QueueFullError,
    TaskNotFoundError,
)
from fluxserve.tasks import schema, worker_sql
from fluxserve.tasks.projects import ProjectStore
from fluxserve.tasks.records import NewOutput, OutputRecord, Project, TaskRecord, UploadRecord
from fluxserve.tasks.schema_version import is_current
from fluxserve.tasks.stats import TaskStats
from fluxserve.tasks.status import TIME_FIELD, TaskStatus
from fluxserve.text import scrub

log = logging.getLogger(__name__)

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def random_token(length: int = 30) -> str:
    """Wiro-style opaque token (e.g. socketaccesstoken, accesskey)."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(length))


def create_db_engine(url: str) -> sa.Engine:
    """An Engine with the connection settings fluxserve needs (SQLite: WAL, busy timeout, FKs)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class TaskStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.projects = ProjectStore(engine)
        self.stats = TaskStats(engine)

    @classmethod
    def open(cls, url: str) -> TaskStore:
        store = cls(create_db_engine(url))
        store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (Alembic is imported only when the
        database is not already there: see tasks/schema_version.py)."""
        with self.engine.connect() as connection:
            if is_current(connection):
                return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(resources.files("fluxserve.tasks") / "migrations"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    # --- projects -------------------------------------------------------------------------

    def ensure_project(
        self, api_key: str, api_secret: str, require_signature: bool, *, bootstrap: bool = False
    ) -> Project:
        """Create the project with this key, or update its secret/mode (see ProjectStore.ensure)."""
        return self.projects.ensure(api_key, api_secret, require_signature, bootstrap=bootstrap)

    def project_by_key(self, api_key: str) -> Project | None:
        """The live project with this API key; every request's authentication asks this."""
        return self.projects.by_key(api_key)

    # --- creating and reading tasks -------------------------------------------------------

    def create_task(
        self,
        project_id: int,
        tool: str,
        inputs: dict[str, Any],
        parameters: dict[str, Any],
        files: dict[str, str] | None = None,
        callbackurl: str = "",
        debugoutput: str = "",
        *,
        max_concurrent: int = 0,
        max_queued: int = 0,
        batch_key: str = "",
    ) -> TaskRecord:
        """Queue a task. Over the project's ``max_concurrent`` unfinished tasks, or with ``max_queued``
        tasks already waiting, nothing is created (ConcurrencyLimitError / QueueFullError); 0 = no limit.
        ``batch_key`` (:func:`fluxserve.catalog.batching.batch_key`): tasks with the same non-empty key
        may be claimed together.
        """
        t = schema.tasks
        values = {
            "uuid": str(uuid.uuid4()),
            "token": random_token(),
            "project_id": project_id,
            "tool": tool,
            "inputs": inputs,
            "parameters": parameters,
            "files": files or {},
            "status": TaskStatus.QUEUE.value,
            "callbackurl": callbackurl,
            "debugoutput": debugoutput,
            "createtime": time.time(),
            "batch_key": batch_key,
        }
        with self.engine.begin() as conn:
            if max_concurrent or max_queued:
                _check_limits(conn, project_id, max_concurrent, max_queued)
            task_id = conn.execute(sa.insert(t).values(**values).returning(t.c.id)).scalar_one()
        return self.get(task_id)

    def get(self, task_id: int) -> TaskRecord:
        task = self._fetch(_BY["id"], {"key": task_id})
        if task is None:
            raise TaskNotFoundError(f"Task {task_id} does not exist")
        return task

    def find(
        self,
        project_id: int,
        *,
        taskid: str | None = None,
        token: str | None = None,
        task_uuid: str | None = None,
    ) -> TaskRecord:
        """A project's task by id, socket access token or uuid; NotFoundError when none matches."""
        if taskid:
            text = str(taskid).strip()
            # Ids are INTEGER columns (32-bit on PostgreSQL): a larger number matches no task, and
            # must not reach the database, which would refuse it as out of range.
            if not (text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= _MAX_ID):
                raise TaskNotFoundError(_no_task(taskid))
            column, key = "id", int(text)
        elif token:
            column, key = "token", token
        elif task_uuid:
            column, key = "uuid", task_uuid
        else:
            raise TaskNotFoundError("No task identifier given")
        task = self._fetch(_IN_PROJECT[column], {"key": key, "project_id": project_id})
        if task is None:
            raise TaskNotFoundError(_no_task(taskid or token or task_uuid))
        return task

    def by_token(self, token: str) -> TaskRecord | None:
        """Any project's task by its socket access token (the live socket's only credential)."""
        if not token:
            return None
        return self._fetch(_BY["token"], {"key": token})

    def list(self, project_id: int, start: int = 0, limit: int = 20) -> tuple[int, list[TaskRecord]]:
        """Newest first."""
        t = schema.tasks
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(t.c.project_id == project_id)).scalar_one()
            rows = conn.execute(
                sa.select(t)
                .where(t.c.project_id == project_id)
                .order_by(t.c.id.desc())
                .offset(start)
                .limit(limit)
            ).mappings()
            tasks = [self._record(row) for row in rows]
            self._attach_outputs(conn, tasks)
        return total, tasks

    def tool_stats(self) -> dict[str, tuple[int, int, int, float]]:
        """Per tool, over every project: (tasks, succeeded, failed, newest createtime) — Wiro's taskstat."""
        t = schema.tasks
        done = sa.and_(t.c.status == TaskStatus.POSTPROCESS_END.value, t.c.pexit == "0")
        failed = sa.and_(t.c.status == TaskStatus.POSTPROCESS_END.value, t.c.pexit != "0")
        query = sa.select(
            t.c.tool,
            sa.func.count(),
            sa.func.sum(sa.case((done, 1), else_=0)),
            sa.func.sum(sa.case((failed, 1), else_=0)),
            sa.func.max(t.c.createtime),
        ).group_by(t.c.tool)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {row[0]: (int(row[1]), int(row[2] or 0), int(row[3] or 0), float(row[4] or 0)) for row in rows}

    def output_by_accesskey(self, accesskey: str) -> OutputRecord | None:
        o = schema.outputs
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(o).where(o.c.accesskey == accesskey)).mappings().first()
        return OutputRecord(**row) if row else None

    def _fetch(self, statement: sa.Select, params: dict[str, Any]) -> TaskRecord | None:
        """One task and its outputs in one prepared query (a LEFT JOIN; Detail's whole database cost)."""
        with self.engine.connect() as conn:
            rows = conn.execute(statement, params).mappings().all()
        if not rows:
            return None
        task = self._record(rows[0])
        for row in rows:
            if row["out_id"] is not None:
                task.outputs.append(OutputRecord(**{name: row[label] for name, label in _OUTPUT_NAMES}))
        return task

    @staticmethod
    def _record(row: Any) -> TaskRecord:
        """A row as a record; text no encoder can handle (stored before the API refused it, or
        by an older version) is scrubbed here, so no read of Detail, List or a callback can fail."""
        return TaskRecord(
            id=row["id"],
            uuid=row["uuid"],
            token=row["token"],
            project_id=row["project_id"],
            tool=row["tool"],
            inputs=scrub(row["inputs"]),
            parameters=scrub(row["parameters"]),
            files=scrub(row["files"]),
            status=TaskStatus(row["status"]),
            debugoutput=scrub(row["debugoutput"]),
            debugerror=scrub(row["debugerror"]),
            pexit=row["pexit"],
            callbackurl=scrub(row["callbackurl"]),
            times={name: row[name] for name in _TIME_COLUMNS},
            attempts=row["attempts"],
            kill_requested=bool(row["kill_requested"]),
            worker_id=row["worker_id"],
            lease_expires_at=row["lease_expires_at"],
            callback_state=row["callback_state"],
            callback_attempts=row["callback_attempts"],
            batch_key=row["batch_key"],
        )

    @staticmethod
    def _attach_outputs(conn: sa.Connection, tasks: list[TaskRecord]) -> None:
        if not tasks:
            return
        o = schema.outputs
        by_id = {task.id: task for task in tasks}
        rows = conn.execute(sa.select(o).where(o.c.task_id.in_(by_id)).order_by(o.c.task_id, o.c.position))
        for row in rows.mappings():
            by_id[row["task_id"]].outputs.append(OutputRecord(**row))

    # --- uploaded files -------------------------------------------------------------------

    def add_upload(
        self, project_id: int, name: str, contenttype: str, size: int, accesskey: str, storage_key: str
    ) -> UploadRecord:
        u = schema.uploads
        values = {
            "project_id": project_id,
            "name": name,
            "contenttype": contenttype,
            "size": size,
            "accesskey": accesskey,
            "storage_key": storage_key,
            "addedtime": time.time(),
        }
        with self.engine.begin() as conn:
            upload_id = conn.execute(sa.insert(u).values(**values).returning(u.c.id)).scalar_one()
        return UploadRecord(id=upload_id, **values)

    def upload_by_name(self, project_id: int, name: str) -> UploadRecord | None:
        """The project's newest upload with this file name."""
        u = schema.uploads
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(u)
                    .where(u.c.project_id == project_id, u.c.name == name)
                    .order_by(u.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return UploadRecord(**row) if row else None

    def upload_by_accesskey(self, accesskey: str) -> UploadRecord | None:
        u = schema.uploads
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(u).where(u.c.accesskey == accesskey)).mappings().first()
        return UploadRecord(**row) if row else None

    # --- client actions -------------------------------------------------------------------

    def cancel_queued(self, task: TaskRecord) -> TaskRecord:
        """Cancel a task that no worker has claimed yet; ConflictError if it already started or ended."""
        t = schema.tasks
        now = time.time()
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(t)
                .where(t.c.id == task.id, t.c.status == TaskStatus.QUEUE.value)
                .values(
                    status=TaskStatus.CANCEL.value,
                    canceltime=now,
                    debugoutput="Cancelled while queued.",
                    callback_state=_callback_state_for(task.callbackurl),
                    callback_next_at=now,
                )
            ).rowcount
        if not changed:
            current = self.get(task.id)
            hint = "" if current.status.is_terminal() else " Use Task/Kill to stop a running task."
            raise NotCancellableError(f"{_state(current).capitalize()}.{hint}")
        return self.get(task.id)

    def request_kill(self, task: TaskRecord) -> TaskRecord:
        """Kill: a queued task is cancelled at once; a running one gets its kill flag set."""
        if task.status is TaskStatus.QUEUE:
            try:
                return self.cancel_queued(task)
            except ConflictError:
                task = self.get(task.id)  # claimed in the meantime: fall through to the flag
        t = schema.tasks
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(t).where(t.c.id == task.id, t.c.status.in_(_RUNNING)).values(kill_requested=True)
            ).rowcount
        if not changed:
            current = self.get(task.id)
            if current.status is TaskStatus.QUEUE:
                return self.request_kill(current)
            raise NotKillableError(_state(current))
        return self.get(task.id)

    # --- worker side ----------------------------------------------------------------------

    def claim(
        self, worker_id: str, lease_seconds: float, tools: Iterable[str] | None = None
    ) -> TaskRecord | None:
        """Take the oldest queued task (of ``tools``, if given): status task_accept, lease, attempts+1."""
        claimed = self.claim_batch(worker_id, lease_seconds, tools, limit=1)
        return claimed[0] if claimed else None

    def claim_batch(
        self,
        worker_id: str,
        lease_seconds: float,
        tools: Iterable[str] | None = None,
        limit: int = 1,
        through: TaskStatus = TaskStatus.ACCEPT,
    ) -> list[TaskRecord]:
        """Take the oldest queued task (of ``tools``) and, in the same statement, up to ``limit - 1``
        more queued tasks with its batch key (none when its key is empty), oldest first.

        One UPDATE whose row choice is a subquery: atomic on SQLite (the statement holds the write
        lock) and on PostgreSQL (``FOR UPDATE SKIP LOCKED``: concurrent claimers take other rows).
        The claimed tasks enter task_accept, or go straight on to ``through`` (a later running
        status) with the time of every status on the way stamped: a worker that would move them
        on at once saves a write.
        """
        statement = worker_sql.claim_statement(tools is not None, limit > 1, through)
        params = {"limit": max(1, limit), **_tool_params(tools, "tools", "first_tools")}
        return self._take(statement, params, worker_id, lease_seconds)  # the oldest is always among them

    def claim_compatible(
        self,
        worker_id: str,
        lease_seconds: float,
        batch_key: str,
        tools: Iterable[str] | None = None,
        limit: int = 1,
        through: TaskStatus = TaskStatus.ACCEPT,
    ) -> list[TaskRecord]:
        """Take up to ``limit`` queued tasks with ``batch_key`` (non-empty) to join a running claim."""
        if not batch_key or limit < 1:
            return []
        statement = worker_sql.company_statement(tools is not None, through)
        params = {"limit": limit, "p_batch_key": batch_key, **_tool_params(tools, "tools")}
        return self._take(statement, params, worker_id, lease_seconds)

    def has_queued(self, tools: Iterable[str] | None = None) -> bool:
        """Whether any task (of ``tools``) is waiting."""
        statement = worker_sql.any_queued_statement(tools is not None)
        with self.engine.connect() as conn:
            return conn.execute(statement, _tool_params(tools, "tools")).first() is not None

    def _take(
        self, statement: sa.Update, params: dict[str, Any], worker_id: str, lease_seconds: float
    ) -> list[TaskRecord]:
        """Run a claim statement of :mod:`fluxserve.tasks.worker_sql`; the claimed tasks, oldest first."""
        now = time.time()
        params.update(now=now, p_worker_id=worker_id, p_lease_expires_at=now + lease_seconds)
        with self.engine.begin() as conn:
            rows = conn.execute(statement, params).mappings().all()
        return sorted(
            (self._record(row) for row in rows), key=lambda task: task.id
        )  # outputs come with the end

    def advance(
        self,
        task_id: int,
        worker_id: str,
        status: TaskStatus,
        debugoutput: str | None = None,
        passing: tuple[TaskStatus, ...] = (),
    ) -> bool:
        """Move a task this worker owns forward to ``status`` and stamp its time (and the times of
        the ``passing`` statuses it goes through on the way, in the same write).

        False when the task is no longer this worker's, or already at or past ``status``.
        """
        if debugoutput is None:
            return bool(self.advance_many([task_id], worker_id, status, passing))
        values = {**worker_sql.advance_values(status, passing), "debugoutput": debugoutput}
        statement = worker_sql.owned().where(worker_sql.advanceable(status)).values(**values)
        params = {"p_task_id": task_id, "p_worker_id": worker_id, "now": time.time()}
        with self.engine.begin() as conn:
            return bool(conn.execute(statement, params).rowcount)

    def advance_many(
        self,
        task_ids: Iterable[int],
        worker_id: str,
        status: TaskStatus,
        passing: tuple[TaskStatus, ...] = (),
    ) -> set[int]:
        """:meth:`advance` for the tasks of a batch in one write; the ids that moved."""
        ids = list(task_ids)
        if not ids:
            return set()
        statement = worker_sql.advance_statement(status, tuple(passing))
        params = {"ids": ids, "p_worker_id": worker_id, "now": time.time()}
        with self.engine.begin() as conn:
            return set(conn.execute(statement, params).scalars())

    def renew_lease(self, task_id: int, worker_id: str, lease_seconds: float) -> bool:
        params = {
            "p_task_id": task_id,
            "p_worker_id": worker_id,
            "p_lease_expires_at": time.time() + lease_seconds,
        }
        with self.engine.begin() as conn:
            return bool(conn.execute(worker_sql.RENEW_LEASE, params).rowcount)

    def kill_requested(self, task_id: int) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(worker_sql.KILL_FLAG, {"p_task_id": task_id}).scalar())

    def set_debugoutput(self, task_id: int, worker_id: str, debugoutput: str) -> None:
        params = {"p_task_id": task_id, "p_worker_id": worker_id, "p_debugoutput": debugoutput}
        with self.engine.begin() as conn:
            conn.execute(worker_sql.SET_DEBUGOUTPUT, params)

    def finish(
        self,
        task_id: int,
        worker_id: str,
        *,
        status: TaskStatus,
        pexit: str = "0",
        debugoutput: str | None = None,
        debugerror: str = "",
        outputs: list[NewOutput] = (),  # type: ignore[assignment]
    ) -> TaskRecord | None:
        """End a task this worker owns (success, failure or kill) and attach its outputs, atomically.

        The ended task with its outputs (what the end's events are built from), or None when the
        task is no longer this worker's or has already ended."""
        now = time.time()
        owner = {"p_task_id": task_id, "p_worker_id": worker_id}
        with self.engine.begin() as conn:
            current = conn.execute(worker_sql.TASK_ROW, owner).mappings().first()
            if current is None or current["worker_id"] != worker_id or current["status"] not in _RUNNING:
                return None
            values = _terminal_times(current, status, now)
            values.update(
                status=status.value,
                pexit=pexit,
                debugerror=debugerror,
                lease_expires_at=0,
                callback_state=_callback_state_for(current["callbackurl"]),
                callback_next_at=now,
            )
            if debugoutput is not None:
                values["debugoutput"] = debugoutput
            statement = worker_sql.owned_update(tuple(sorted(values)))
            params = {**owner, **{f"v_{name}": value for name, value in values.items()}}
            row = conn.execute(statement, params).mappings().first()
            if row is None:
                return None
            ended = self._record(row)
            parentid = uuid.uuid4().hex
            ended.outputs = [
                OutputRecord(
                    id=uuid.uuid4().hex,
                    task_id=task_id,
                    position=position,
                    name=item.name,
                    contenttype=item.contenttype,
                    size=item.size,
                    parentid=parentid,
                    accesskey=item.accesskey,
                    storage_key=item.storage_key,
                    addedtime=now,
                    modifiedtime=now,
                )
                for position, item in enumerate(outputs)
            ]
            if ended.outputs:
                conn.execute(sa.insert(schema.outputs), [vars(output) for output in ended.outputs])
        return ended

    # --- recovery -------------------------------------------------------------------------

    def recover_expired(self, max_attempts: int, now: float | None = None) -> tuple[list[int], list[int]]:
        """Put running tasks whose lease lapsed back in the queue, or fail them after max_attempts.

        Returns (requeued ids, failed ids). A task killed by its user before the crash ends as
        task_cancel instead of running again.
        """
        t = schema.tasks
        now = time.time() if now is None else now
        requeued: list[int] = []
        failed: list[int] = []
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(t.c.status.in_(_RUNNING), t.c.lease_expires_at < now)
                .with_for_update(skip_locked=True)
            ).mappings()
            for row in list(rows):
                values, ended = _recovery_values(row, max_attempts, now)
                guard = sa.update(t).where(
                    t.c.id == row["id"], t.c.worker_id == row["worker_id"], t.c.status == row["status"]
                )
                if conn.execute(guard.values(**values)).rowcount:
                    (failed if ended else requeued).append(row["id"])
        for task_id in requeued:
            log.warning("task %s re-queued: its worker's lease expired", task_id)
        for task_id in failed:
            log.warning("task %s ended: its worker's lease expired", task_id)
        return requeued, failed

    def expire_leases_of(self, worker_prefix: str) -> int:
        """Expire the leases of workers whose id starts with ``worker_prefix`` (a dead process's)."""
        t = schema.tasks
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(t)
                .where(t.c.status.in_(_RUNNING), t.c.worker_id.startswith(worker_prefix, autoescape=True))
                .values(lease_expires_at=0)
            ).rowcount

    def running_worker_ids(self) -> list[str]:
        t = schema.tasks
        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.select(t.c.worker_id).where(t.c.status.in_(_RUNNING)).distinct()).scalars()
            )

    # --- callbacks ------------------------------------------------------------------------

    def due_callbacks(self, now: float, limit: int = 20, hold_seconds: float = 120.0) -> list[TaskRecord]:
        """Claim the callbacks due at ``now``: each is pushed ``hold_seconds`` into the future by one
        conditional UPDATE, so when several processes (API, workers on other machines) deliver
        callbacks, exactly one of them gets each delivery; a process that dies while delivering
        leaves it to be retried once the hold lapses."""
        t = schema.tasks
        due = sa.and_(t.c.callback_state == "pending", t.c.callback_next_at <= now)
        claimed: list[int] = []
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    sa.select(t.c.id).where(due).order_by(t.c.callback_next_at).limit(limit)
                ).scalars()
            )
            for task_id in ids:
                hold = sa.update(t).where(t.c.id == task_id, due).values(callback_next_at=now + hold_seconds)
                if conn.execute(hold).rowcount:
                    claimed.append(task_id)
        return [self.get(task_id) for task_id in claimed]

    def record_callback_attempt(
        self, task_id: int, *, delivered: bool, next_at: float | None, note: str = ""
    ) -> None:
        """After one delivery try: delivered, retry at ``next_at``, or give up (next_at None).

        ``note`` (why a callback was refused or given up) is added as a line of the task's
        debugoutput, so Detail shows it.
        """
        t = schema.tasks
        state = "delivered" if delivered else ("pending" if next_at is not None else "failed")
        values: dict[str, Any] = {
            "callback_state": state,
            "callback_attempts": t.c.callback_attempts + 1,
            "callback_next_at": next_at or 0,
        }
        with self.engine.begin() as conn:
            if note:
                current = conn.execute(sa.select(t.c.debugoutput).where(t.c.id == task_id)).scalar() or ""
                values["debugoutput"] = f"{current}\n{scrub(note)}" if current else scrub(note)
            conn.execute(sa.update(t).where(t.c.id == task_id).values(**values))


_RUNNING = worker_sql.RUNNING
_MAX_ID = 2**31 - 1
_OUTPUT_NAMES = [(column.name, f"out_{column.name}") for column in schema.outputs.c]


def _task_with_outputs(column: str, in_project: bool) -> sa.Select:
    """A task (by ``column`` = :key) joined with its outputs; built once and reused, which spares
    SQLAlchemy rebuilding the statement and its cache key on every Detail."""
    t, o = schema.tasks, schema.outputs
    statement = (
        sa.select(t, *[o.c[name].label(label) for name, label in _OUTPUT_NAMES])
        .select_from(t.outerjoin(o, o.c.task_id == t.c.id))
        .where(t.c[column] == sa.bindparam("key"))
        .order_by(o.c.position)
    )
    return statement.where(t.c.project_id == sa.bindparam("project_id")) if in_project else statement


_BY = {column: _task_with_outputs(column, in_project=False) for column in ("id", "token")}
_IN_PROJECT = {column: _task_with_outputs(column, in_project=True) for column in ("id", "token", "uuid")}
_TIME_COLUMNS = tuple(dict.fromkeys([*TIME_FIELD.values(), "postprocessstarttime"]))


def _tool_params(tools: Iterable[str] | None, *names: str) -> dict[str, list[str]]:
    """The tool filter's bind parameters (none when every tool is claimed)."""
    if tools is None:
        return {}
    chosen = list(tools)
    return {name: chosen for name in names}


def _no_task(identifier: object) -> str:
    """Wiro's "There is no task yet." — the same for a made-up task and another project's task."""
    return f"There is no task yet. (Task '{identifier}' does not exist in this project.)"


def _check_limits(conn: sa.Connection, project_id: int, max_concurrent: int, max_queued: int) -> None:
    """Count under a lock on the project row, so two Runs of one project cannot both take the last
    slot (the UPDATE takes SQLite's write lock or PostgreSQL's row lock before anything is counted).
    """
    t, p = schema.tasks, schema.projects
    conn.execute(sa.update(p).where(p.c.id == project_id).values(id=p.c.id))
    count = sa.select(sa.func.count()).select_from(t)
    if max_concurrent:
        unfinished = t.c.status.not_in([TaskStatus.POSTPROCESS_END.value, TaskStatus.CANCEL.value])
        if conn.execute(count.where(t.c.project_id == project_id, unfinished)).scalar_one() >= max_concurrent:
            raise ConcurrencyLimitError(max_concurrent)
    queued = t.c.status == TaskStatus.QUEUE.value
    if max_queued and conn.execute(count.where(queued)).scalar_one() >= max_queued:
        raise QueueFullError(max_queued)


def _callback_state_for(url: str) -> str:
    """A callback is due for an http(s) URL, whatever the case of its scheme."""
    return "pending" if url.strip().lower().startswith(("http://", "https://")) else "none"


def _terminal_times(row: Any, status: TaskStatus, now: float) -> dict[str, float]:
    """Times to stamp when a task ends: the terminal field, plus end/postprocess times not reached."""
    values = {TIME_FIELD[status]: now}
    if status is TaskStatus.POSTPROCESS_END:
        for name in ("endtime", "postprocessstarttime"):
            if not row[name]:
                values[name] = now
    elif not row["endtime"] and row["starttime"]:
        values["endtime"] = now
    return values


def _recovery_values(row: Any, max_attempts: int, now: float) -> tuple[dict[str, Any], bool]:
    """What a running task whose worker vanished becomes: (column values, whether it ended).

    Killed before the crash: task_cancel. Out of attempts: a failure that says why. Else: queued
    again with its progress times cleared (createtime and attempts are kept).
    """
    ended_callback = {"callback_state": _callback_state_for(row["callbackurl"]), "callback_next_at": now}
    if row["kill_requested"]:
        values = _terminal_times(row, TaskStatus.CANCEL, now)
        values.update(
            status=TaskStatus.CANCEL.value, debugoutput="Killed; its worker had stopped.", **ended_callback
        )
        return values, True
    if row["attempts"] >= max_attempts:
        values = _terminal_times(row, TaskStatus.POSTPROCESS_END, now)
        values.update(
            status=TaskStatus.POSTPROCESS_END.value,
            pexit="1",
            debugerror=(
                f"The worker running this task stopped unexpectedly {row['attempts']} times "
                "(crash, out of memory or restart), so fluxserve gave up on it. "
                "Try smaller width/height or fewer samples, or check the worker's log."
            ),
            **ended_callback,
        )
        return values, True
    values: dict[str, Any] = {name: 0 for name in _TIME_COLUMNS if name != "createtime"}
    values.update(
        status=TaskStatus.QUEUE.value,
        worker_id="",
        lease_expires_at=0,
        debugoutput=f"Re-queued after its worker stopped (attempt {row['attempts']} of {max_attempts}).",
    )
    return values, False


def _state(task: TaskRecord) -> str:
    """Why an action on ``task`` is refused, e.g. "it has already ended (status task_cancel)"."""
    state = "has already ended" if task.status.is_terminal() else "is already running"
    return f"it {state} (status {task.status.value})"
