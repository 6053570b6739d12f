"""Aggregates over the task table for the metrics endpoint, computed at scrape time.

Everything here is read from the store, so it is the same whichever process (API, workers, another
machine) did the work, and it survives restarts: the store is the single source of truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from fluxserve.tasks import schema
from fluxserve.tasks.status import RUNNING_STATUSES, TaskStatus

DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class Histogram:
    """``buckets[i]`` = how many observations are <= ``DURATION_BUCKETS[i]`` (cumulative)."""

    buckets: list[int]
    count: int
    total: float


class TaskStats:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def task_totals(self) -> dict[tuple[str, str], int]:
        """(tool, outcome) -> tasks: ``created`` (every task), ``succeeded``, ``failed``, ``cancelled``."""
        t = schema.tasks
        outcome = sa.case(
            (t.c.status == TaskStatus.CANCEL.value, "cancelled"),
            (sa.and_(t.c.status == TaskStatus.POSTPROCESS_END.value, t.c.pexit == "0"), "succeeded"),
            (t.c.status == TaskStatus.POSTPROCESS_END.value, "failed"),
            else_="",
        ).label("outcome")
        totals: dict[tuple[str, str], int] = {}
        with self.engine.connect() as conn:
            for tool, ended, count in conn.execute(
                sa.select(t.c.tool, outcome, sa.func.count()).group_by(t.c.tool, outcome)
            ):
                totals[(tool, "created")] = totals.get((tool, "created"), 0) + count
                if ended:
                    totals[(tool, ended)] = count
        return totals

    def counts_by_tool(self, statuses: Sequence[TaskStatus]) -> dict[str, int]:
        t = schema.tasks
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.tool, sa.func.count())
                .where(t.c.status.in_([s.value for s in statuses]))
                .group_by(t.c.tool)
            )
            return {tool: count for tool, count in rows}

    def queue_depth(self) -> dict[str, int]:
        return self.counts_by_tool([TaskStatus.QUEUE])

    def running(self) -> dict[str, int]:
        return self.counts_by_tool(RUNNING_STATUSES)

    def durations(self) -> dict[tuple[str, str], Histogram]:
        """(tool, phase) -> histogram; phase ``queue`` = created to claimed, ``run`` = claimed to ended."""
        t = schema.tasks
        phases = {
            "queue": (t.c.accepttime - t.c.createtime, t.c.accepttime > 0),
            "run": (
                t.c.postprocessendtime - t.c.accepttime,
                sa.and_(t.c.status == TaskStatus.POSTPROCESS_END.value, t.c.accepttime > 0),
            ),
        }
        result: dict[tuple[str, str], Histogram] = {}
        with self.engine.connect() as conn:
            for phase, (value, condition) in phases.items():
                columns = [sa.func.sum(sa.case((value <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
                query = sa.select(t.c.tool, sa.func.count(), sa.func.sum(value), *columns).where(condition)
                for tool, count, total, *buckets in conn.execute(query.group_by(t.c.tool)):
                    result[(tool, phase)] = Histogram(
                        [int(b or 0) for b in buckets], count, float(total or 0)
                    )
        return result

    def callbacks(self) -> dict[str, int]:
        """Callback deliveries by state: ``delivered``, ``failed`` (gave up or refused), ``pending``."""
        t = schema.tasks
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.callback_state, sa.func.count())
                .where(t.c.callback_state != "none")
                .group_by(t.c.callback_state)
            )
            return {state: count for state, count in rows}
