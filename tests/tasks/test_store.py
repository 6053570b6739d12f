"""TaskStore: claims, state changes, cancel/kill races, lease recovery and callback bookkeeping."""

from __future__ import annotations

import threading

import pytest

from fluxserve.errors import ConflictError, NotFoundError
from fluxserve.tasks.records import NewOutput
from fluxserve.tasks.status import TaskStatus, can_advance
from fluxserve.tasks.store import TaskStore


@pytest.fixture
def project_id(store: TaskStore) -> int:
    return store.ensure_project("key", "secret", True).id


def _task(store: TaskStore, project_id: int, callback: str = ""):
    return store.create_task(project_id, "a/b", {"steps": 4}, {"steps": "4"}, callbackurl=callback)


def test_new_tasks_are_queued_with_unique_tokens(store: TaskStore, project_id: int) -> None:
    first, second = _task(store, project_id), _task(store, project_id)
    assert first.status is TaskStatus.QUEUE and first.times["createtime"] > 0
    assert first.token != second.token and len(first.token) == 30
    assert store.find(project_id, token=first.token).id == first.id
    assert store.find(project_id, task_uuid=second.uuid).id == second.id


def test_tasks_of_another_project_are_not_found(store: TaskStore, project_id: int) -> None:
    other = store.ensure_project("other", "s", True).id
    task = _task(store, project_id)
    with pytest.raises(NotFoundError):
        store.find(other, taskid=task.taskid)


def test_concurrent_claims_never_hand_out_the_same_task(store: TaskStore, project_id: int) -> None:
    ids = {_task(store, project_id).id for _ in range(20)}
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (task := store.claim(name, 30)) is not None:
            with lock:
                claimed.append(task.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)


def test_claim_takes_the_oldest_and_counts_the_attempt(store: TaskStore, project_id: int) -> None:
    first = _task(store, project_id)
    _task(store, project_id)
    claimed = store.claim("w", 30)
    assert claimed.id == first.id and claimed.status is TaskStatus.ACCEPT and claimed.attempts == 1


def test_only_the_owning_worker_can_advance_and_finish(store: TaskStore, project_id: int) -> None:
    task = _task(store, project_id)
    store.claim("w1", 30)
    assert not store.advance(task.id, "w2", TaskStatus.ASSIGN)
    assert store.advance(task.id, "w1", TaskStatus.ASSIGN)
    assert not store.advance(task.id, "w1", TaskStatus.ACCEPT)  # statuses only move forward
    assert store.get(task.id).status is TaskStatus.ASSIGN
    output = NewOutput(name="0.png", contenttype="image/png", size=3, storage_key="k", accesskey="a" * 30)
    assert store.finish(task.id, "w1", status=TaskStatus.POSTPROCESS_END, outputs=[output])
    ended = store.get(task.id)
    assert ended.status is TaskStatus.POSTPROCESS_END and ended.outputs[0].name == "0.png"
    assert ended.times["postprocessendtime"] >= ended.times["assigntime"] > 0
    assert not store.finish(task.id, "w1", status=TaskStatus.CANCEL)  # ended tasks stay ended


def test_one_advance_can_pass_through_statuses_and_stamps_each_time(
    store: TaskStore, project_id: int
) -> None:
    task = _task(store, project_id)
    claimed = store.claim("w1", 30)
    assert claimed.worker_id == "w1" and claimed.times["accepttime"] > 0 and claimed.outputs == []
    passing = (TaskStatus.ASSIGN,)
    assert store.advance(task.id, "w1", TaskStatus.PREPROCESS_START, passing=passing)
    moved = store.get(task.id)
    assert moved.status is TaskStatus.PREPROCESS_START
    assert moved.times["assigntime"] == moved.times["preprocessstarttime"] > 0
    assert not store.advance(task.id, "w1", TaskStatus.ASSIGN)  # still forward only


def test_cancel_only_applies_to_queued_tasks(store: TaskStore, project_id: int) -> None:
    queued = _task(store, project_id)
    assert store.cancel_queued(queued).status is TaskStatus.CANCEL
    running = _task(store, project_id)
    store.claim("w", 30)
    with pytest.raises(ConflictError, match="already running"):
        store.cancel_queued(running)
    with pytest.raises(ConflictError, match="already ended"):
        store.cancel_queued(queued)


def test_kill_sets_the_flag_of_a_running_task_and_cancels_a_queued_one(
    store: TaskStore, project_id: int
) -> None:
    running = _task(store, project_id)
    store.claim("w", 30)
    queued = _task(store, project_id)
    assert store.request_kill(running).kill_requested and store.kill_requested(running.id)
    assert store.request_kill(queued).status is TaskStatus.CANCEL


def test_lapsed_leases_requeue_then_fail_after_max_attempts(store: TaskStore, project_id: int) -> None:
    task = _task(store, project_id)
    for attempt in (1, 2):
        store.claim("dead", -1)
        assert store.recover_expired(3) == ([task.id], [])
        requeued = store.get(task.id)
        assert requeued.status is TaskStatus.QUEUE and requeued.attempts == attempt
        assert requeued.times["accepttime"] == 0
    store.claim("dead", -1)
    assert store.recover_expired(3) == ([], [task.id])
    failed = store.get(task.id)
    assert failed.status is TaskStatus.POSTPROCESS_END and failed.pexit == "1"
    assert "stopped unexpectedly 3 times" in failed.debugerror


def test_a_live_lease_is_not_recovered(store: TaskStore, project_id: int) -> None:
    _task(store, project_id)
    store.claim("alive", 30)
    assert store.recover_expired(3) == ([], [])


def test_callbacks_become_due_when_a_task_ends(store: TaskStore, project_id: int) -> None:
    task = _task(store, project_id, callback="http://127.0.0.1:9/hook")
    assert store.due_callbacks(now=1e12) == []
    store.cancel_queued(task)
    due = store.due_callbacks(now=1e12)
    assert [t.id for t in due] == [task.id]
    store.record_callback_attempt(task.id, delivered=False, next_at=2e12)
    assert store.due_callbacks(now=1e12) == []
    store.record_callback_attempt(task.id, delivered=True, next_at=None)
    assert store.get(task.id).callback_state == "delivered"


def test_a_due_callback_is_handed_to_one_deliverer_until_its_hold_lapses(
    store: TaskStore, project_id: int
) -> None:
    task = store.cancel_queued(_task(store, project_id, callback="http://127.0.0.1:9/hook"))
    now = task.times["canceltime"] + 1
    assert [t.id for t in store.due_callbacks(now=now, hold_seconds=60)] == [task.id]
    assert store.due_callbacks(now=now) == []  # another process asking at the same time gets nothing
    assert [t.id for t in store.due_callbacks(now=now + 61)] == [task.id]  # the deliverer died


def test_status_order_only_moves_forward() -> None:
    assert can_advance(TaskStatus.QUEUE, TaskStatus.ACCEPT)
    assert not can_advance(TaskStatus.START, TaskStatus.ASSIGN)
    assert can_advance(TaskStatus.START, TaskStatus.CANCEL)
    assert not can_advance(TaskStatus.CANCEL, TaskStatus.POSTPROCESS_END)


@pytest.mark.parametrize("taskid", ["2147483648", "99999999999", "9" * 18, "-1", "1\u00b2", "\u0663"])
def test_an_id_no_task_can_have_is_not_found_without_asking_the_database(
    store: TaskStore, project_id: int, taskid: str
) -> None:
    """INTEGER is 32-bit on PostgreSQL: a bigger id must be 'not found', not a database error."""
    with pytest.raises(NotFoundError):
        store.find(project_id, taskid=taskid)
