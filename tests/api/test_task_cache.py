"""Detail's task cache: answers from memory until an event says the task changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxserve.api.task_cache import TaskCache
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore


@pytest.fixture
def store(tmp_path: Path) -> TaskStore:
    return TaskStore.open(f"sqlite:///{tmp_path / 'db.sqlite'}")


def _task(store: TaskStore):
    project = store.ensure_project("key", "secret", require_signature=True)
    return project.id, store.create_task(project.id, "some/tool", {"prompt": "x"}, {})


def test_a_read_task_is_served_from_memory_by_id_and_by_token(store: TaskStore) -> None:
    project_id, task = _task(store)
    cache = TaskCache(store, live_seconds=3600)
    assert cache.cached(project_id, taskid=task.taskid) is None
    assert cache.find(project_id, taskid=task.taskid).id == task.id
    assert cache.cached(project_id, taskid=task.taskid).id == task.id
    assert cache.cached(project_id, token=task.token).id == task.id
    assert cache.cached(project_id + 1, taskid=task.taskid) is None  # another project's task


def test_an_event_drops_the_entry_so_the_next_read_sees_the_change(store: TaskStore) -> None:
    project_id, task = _task(store)
    cache = TaskCache(store, live_seconds=3600)
    cache.find(project_id, taskid=task.taskid)
    store.claim("w1", 30)  # a worker claims it ... and publishes task_accept, which lands here:
    cache.invalidate(task.token)
    assert cache.cached(project_id, taskid=task.taskid) is None
    assert cache.find(project_id, taskid=task.taskid).status is TaskStatus.ACCEPT


def test_a_read_that_raced_with_an_event_is_not_kept(store: TaskStore) -> None:
    project_id, task = _task(store)

    class RacingStore:
        def find(self, *args, **kwargs):
            found = store.find(*args, **kwargs)
            cache.invalidate(found.token)  # the worker's event arrives while the row is read
            return found

    cache = TaskCache(RacingStore(), live_seconds=3600)  # type: ignore[arg-type]
    cache.find(project_id, taskid=task.taskid)
    assert cache.cached(project_id, taskid=task.taskid) is None


def test_a_running_task_is_read_again_after_live_seconds_even_without_events(store: TaskStore) -> None:
    project_id, task = _task(store)
    cache = TaskCache(store, live_seconds=0.0, ended_seconds=3600)
    cache.find(project_id, taskid=task.taskid)
    assert cache.cached(project_id, taskid=task.taskid) is None  # queued: not terminal, already old


def test_an_ended_task_whose_callback_is_pending_is_read_again_like_a_running_one(store: TaskStore) -> None:
    """The callback sender notes refusals and give-ups in debugoutput without an event."""
    project = store.ensure_project("key", "secret", require_signature=True)
    with_callback = store.create_task(project.id, "some/tool", {}, {}, callbackurl="http://127.0.0.1:9/h")
    without = store.create_task(project.id, "some/tool", {}, {})
    for task in (with_callback, without):
        store.cancel_queued(task)
    cache = TaskCache(store, live_seconds=0.0, ended_seconds=3600)
    for task in (with_callback, without):
        assert cache.find(project.id, taskid=task.taskid).status is TaskStatus.CANCEL
    assert cache.find(project.id, taskid=with_callback.taskid).callback_state == "pending"
    assert cache.cached(project.id, taskid=with_callback.taskid) is None  # its callback is still due
    assert cache.cached(project.id, taskid=without.taskid).id == without.id  # settled: kept
