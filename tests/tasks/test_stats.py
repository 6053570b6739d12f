"""The store's aggregates behind /metrics, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fluxserve.tasks import schema
from fluxserve.tasks.stats import DURATION_BUCKETS
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore


def _ran(store: TaskStore, project_id: int, tool: str, queued: float, ran: float, pexit: str = "0") -> None:
    task = store.create_task(project_id, tool, {}, {})
    store.claim("w", 30, tools=[tool])
    store.finish(task.id, "w", status=TaskStatus.POSTPROCESS_END, pexit=pexit)
    t = schema.tasks
    with store.engine.begin() as conn:  # exact times, so the buckets are known
        conn.execute(
            sa.update(t)
            .where(t.c.id == task.id)
            .values(createtime=1000.0, accepttime=1000.0 + queued, postprocessendtime=1000.0 + queued + ran)
        )


def test_totals_depths_durations_and_callbacks(store: TaskStore) -> None:
    project = store.projects.create("p").id
    _ran(store, project, "a/x", queued=0.05, ran=3.0)
    _ran(store, project, "a/x", queued=20.0, ran=700.0, pexit="1")
    store.cancel_queued(store.create_task(project, "a/x", {}, {}, callbackurl="http://h.invalid/"))
    store.create_task(project, "b/y", {}, {})
    stats = store.stats
    assert stats.task_totals() == {
        ("a/x", "created"): 3,
        ("a/x", "succeeded"): 1,
        ("a/x", "failed"): 1,
        ("a/x", "cancelled"): 1,
        ("b/y", "created"): 1,
    }
    assert stats.queue_depth() == {"b/y": 1} and stats.running() == {}
    durations = stats.durations()
    queue, run = durations[("a/x", "queue")], durations[("a/x", "run")]
    assert queue.count == 2 and queue.total == pytest.approx(20.05)
    assert queue.buckets[DURATION_BUCKETS.index(0.1)] == 1 and queue.buckets[DURATION_BUCKETS.index(30)] == 2
    assert run.buckets[DURATION_BUCKETS.index(5)] == 1 and run.buckets[DURATION_BUCKETS.index(600)] == 1
    assert run.buckets[-1] == 2 and ("b/y", "queue") not in durations
    assert stats.callbacks() == {"pending": 1}
