"""The statements a worker runs for every task, each built once with bind parameters.

Why: SQLAlchemy spends far more CPU building a statement and its cache key than the database spends
running it. The claim (two CTEs over the 34-column tasks table) cost ~1.6–2 ms of CPU per call
when built afresh, ~0.4 ms when built once (``bench``-style loop over a SQLite store, measured
side by side); on a 4-step task that is a visible share of the worker's time. Everything that varies
(time, worker id, lease, ids, tools, limits) is a bind parameter; statements that differ in shape
(with or without a tool filter, the status a move goes to) are built once per shape.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from fluxserve.tasks import schema
from fluxserve.tasks.status import RUNNING_STATUSES, TIME_FIELD, TaskStatus, can_advance

QUEUE = TaskStatus.QUEUE.value
RUNNING = [status.value for status in RUNNING_STATUSES]


def _claim_values(through: TaskStatus) -> dict[str, object]:
    """What a claim writes: the task is this worker's, with a lease, one more attempt, and the
    statuses from task_accept up to ``through`` stamped with the claim's time."""
    t = schema.tasks
    passing = RUNNING_STATUSES[: RUNNING_STATUSES.index(through)]
    values = advance_values(through, passing)  # the same times a move to ``through`` stamps
    values.update(
        worker_id=sa.bindparam("p_worker_id"),
        lease_expires_at=sa.bindparam("p_lease_expires_at"),
        attempts=t.c.attempts + 1,
        kill_requested=False,
    )
    return values


def _take(chosen: sa.Select, through: TaskStatus) -> sa.Update:
    """Claim the queued rows ``chosen`` selects, in one UPDATE … RETURNING.

    The choice is a materialised CTE with ``FOR UPDATE SKIP LOCKED``: PostgreSQL evaluates it once
    and locks exactly those rows (an ``IN (subquery … LIMIT n FOR UPDATE)`` may be re-run per row
    and take more than n). SQLite ignores both hints; its UPDATE holds the write lock for the whole
    statement.
    """
    t = schema.tasks
    rows = chosen.with_for_update(skip_locked=True).cte("chosen")
    rows = rows.prefix_with("MATERIALIZED", dialect="postgresql")
    return (
        sa.update(t)
        .where(t.c.id.in_(sa.select(rows.c.id)), t.c.status == QUEUE)
        .values(**_claim_values(through))
        .returning(*t.c)
    )


def _queued(filtered: bool, table: sa.FromClause, tools_param: str) -> sa.Select:
    candidate = sa.select(table.c.id).where(table.c.status == QUEUE)
    if filtered:
        candidate = candidate.where(table.c.tool.in_(sa.bindparam(tools_param, expanding=True)))
    return candidate


@functools.cache
def claim_statement(filtered: bool, with_company: bool, through: TaskStatus) -> sa.Update:
    """The oldest queued task (of ``:tools`` when ``filtered``) and, with ``with_company``, up to
    ``:limit - 1`` more queued tasks with its non-empty batch key; oldest first.

    Parameters: ``now``, ``p_worker_id``, ``p_lease_expires_at``, ``limit`` (and ``tools``,
    ``first_tools`` when filtered, both the same list).
    """
    t = schema.tasks
    oldest = t.alias("oldest")  # not correlated with the outer rows
    first = sa.select(oldest.c.id, oldest.c.batch_key).where(oldest.c.status == QUEUE)
    if filtered:
        first = first.where(oldest.c.tool.in_(sa.bindparam("first_tools", expanding=True)))
    first = first.order_by(oldest.c.id).limit(1).with_for_update(skip_locked=True).cte("first")
    first = first.prefix_with("MATERIALIZED", dialect="postgresql")  # evaluated once
    is_first = t.c.id == sa.select(first.c.id).scalar_subquery()
    if with_company:
        same_key = t.c.batch_key == sa.select(first.c.batch_key).scalar_subquery()
        is_first = sa.or_(is_first, sa.and_(same_key, t.c.batch_key != ""))
    chosen = _queued(filtered, t, "tools").where(is_first).order_by(t.c.id).limit(sa.bindparam("limit"))
    return _take(chosen, through)


@functools.cache
def company_statement(filtered: bool, through: TaskStatus) -> sa.Update:
    """Up to ``:limit`` queued tasks with batch key ``:p_batch_key`` (and of ``:tools``), oldest first."""
    t = schema.tasks
    chosen = _queued(filtered, t, "tools").where(t.c.batch_key == sa.bindparam("p_batch_key"))
    return _take(chosen.order_by(t.c.id).limit(sa.bindparam("limit")), through)


@functools.cache
def any_queued_statement(filtered: bool) -> sa.Select:
    """One queued task's id (of ``:tools``), if any."""
    return _queued(filtered, schema.tasks, "tools").limit(1)


def advance_values(status: TaskStatus, passing: tuple[TaskStatus, ...]) -> dict[str, object]:
    """The columns a move to ``status`` (through ``passing``) writes: the status and its times
    (``:now``)."""
    now = sa.bindparam("now")
    values: dict[str, object] = {TIME_FIELD[step]: now for step in passing}
    values.update({"status": status.value, TIME_FIELD[status]: now})
    if status is TaskStatus.OUTPUT:
        values["postprocessstarttime"] = now
    return values


def advanceable(status: TaskStatus) -> sa.ColumnElement[bool]:
    """Tasks still before ``status`` (a move never goes back, nor past an end)."""
    return schema.tasks.c.status.in_([s.value for s in RUNNING_STATUSES if can_advance(s, status)])


@functools.cache
def advance_statement(status: TaskStatus, passing: tuple[TaskStatus, ...]) -> sa.Update:
    """Move the tasks ``:ids`` that ``:p_worker_id`` owns to ``status``; RETURNING the ids that moved."""
    t = schema.tasks
    return (
        sa.update(t)
        .where(
            t.c.id.in_(sa.bindparam("ids", expanding=True)),
            t.c.worker_id == sa.bindparam("p_worker_id"),
            advanceable(status),
        )
        .values(**advance_values(status, passing))
        .returning(t.c.id)
    )


def owned() -> sa.Update:
    """An UPDATE of task ``:p_task_id`` while ``:p_worker_id`` runs it."""
    t = schema.tasks
    return sa.update(t).where(
        t.c.id == sa.bindparam("p_task_id"),
        t.c.worker_id == sa.bindparam("p_worker_id"),
        t.c.status.in_(RUNNING),
    )


@functools.cache
def owned_update(columns: tuple[str, ...]) -> sa.Update:
    """Set ``columns`` (each from ``:v_<column>``) on a task ``:p_worker_id`` runs; RETURNING the
    row. One statement per set of columns (a task's end writes one of a handful)."""
    values = {column: sa.bindparam(f"v_{column}") for column in columns}
    return owned().values(**values).returning(*schema.tasks.c)


RENEW_LEASE = owned().values(lease_expires_at=sa.bindparam("p_lease_expires_at"))
SET_DEBUGOUTPUT = owned().values(debugoutput=sa.bindparam("p_debugoutput"))
KILL_FLAG = sa.select(schema.tasks.c.kill_requested).where(schema.tasks.c.id == sa.bindparam("p_task_id"))
TASK_ROW = sa.select(schema.tasks).where(schema.tasks.c.id == sa.bindparam("p_task_id"))
