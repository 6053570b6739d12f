"""Waiting for company after a claim (worker/batching.claim_batch), on a real SQLite store: the
worker takes compatible tasks that arrive during the wait, and never waits while other work is queued."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fluxserve.tasks.store import TaskStore
from fluxserve.worker.batching import claim_batch


@pytest.fixture
def store(tmp_path: Path) -> TaskStore:
    return TaskStore.open(f"sqlite:///{tmp_path / 'tasks.db'}")


class Clock:
    """Time that passes only when the worker sleeps; ``arrivals`` are queued at each sleep."""

    def __init__(self, store: TaskStore, arrivals: list[list[str]] | None = None) -> None:
        self.now, self.store, self.arrivals, self.queued, self.sleeps = 0.0, store, arrivals or [], [], 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.arrivals:
            self.queued.extend(_queue(self.store, key) for key in self.arrivals.pop(0))


def _queue(store: TaskStore, key: str) -> int:
    project = store.ensure_project("key", "secret", False)
    return store.create_task(project.id, "a/b", {}, {}, batch_key=key).id


def test_compatible_tasks_queued_during_the_wait_join_the_batch(store: TaskStore) -> None:
    first = _queue(store, "A")
    clock = Clock(store, arrivals=[["A"], [], ["A"]])
    batch = claim_batch(store, "w", 30, ["a/b"], 3, wait_seconds=1, sleep=clock.sleep, clock=clock)
    assert [task.id for task in batch] == [first, *clock.queued]
    assert clock.sleeps == 3  # full after the third wait: no more waiting


def test_the_wait_ends_when_incompatible_work_arrives(store: TaskStore) -> None:
    first = _queue(store, "A")
    clock = Clock(store, arrivals=[["A"], ["B"], ["A"]])
    batch = claim_batch(store, "w", 30, ["a/b"], 4, wait_seconds=1, sleep=clock.sleep, clock=clock)
    assert [task.id for task in batch] == [first, clock.queued[0]]
    assert clock.sleeps == 2 and store.get(clock.queued[1]).status.value == "task_queue"


def test_no_wait_while_other_work_is_queued_or_for_unbatchable_tasks(store: TaskStore) -> None:
    clock = Clock(store)
    first, other = _queue(store, "A"), _queue(store, "B")
    batch = claim_batch(store, "w", 30, ["a/b"], 4, wait_seconds=1, sleep=clock.sleep, clock=clock)
    assert [task.id for task in batch] == [first] and clock.sleeps == 0
    # ``wall`` behind the store's clock: the task counts as just queued however slowly this machine
    # got here (time it spent queued would shorten the window: see claim_batch's other tests).
    batch = claim_batch(
        store, "w", 30, ["a/b"], 4, wait_seconds=1, sleep=clock.sleep, clock=clock, wall=lambda: 0.0
    )
    assert [task.id for task in batch] == [other] and clock.now >= 0.99  # empty queue: waited out the window
    plain, slept = _queue(store, ""), clock.sleeps
    batch = claim_batch(store, "w", 30, ["a/b"], 4, wait_seconds=1, sleep=clock.sleep, clock=clock)
    assert [task.id for task in batch] == [plain] and clock.sleeps == slept  # '' never waits


def test_no_wait_for_a_task_that_was_queued_longer_than_the_window(store: TaskStore) -> None:
    first = _queue(store, "A")
    clock = Clock(store, arrivals=[["A"]])
    later = time.time() + 1.5  # the task has waited 1.5 s in the queue; the window is 1 s
    batch = claim_batch(
        store, "w", 30, ["a/b"], 4, wait_seconds=1, sleep=clock.sleep, clock=clock, wall=lambda: later
    )
    assert [task.id for task in batch] == [first] and clock.sleeps == 0


def test_the_window_runs_from_the_task_s_queueing_not_from_the_claim(store: TaskStore) -> None:
    first = _queue(store, "A")
    clock = Clock(store)
    later = store.get(first).times["createtime"] + 0.75  # 0.75 s of the 1 s window spent queued
    batch = claim_batch(
        store, "w", 30, ["a/b"], 4, wait_seconds=1, sleep=clock.sleep, clock=clock, wall=lambda: later
    )
    assert [task.id for task in batch] == [first]
    assert 0.2 <= clock.now <= 0.26  # waited out what was left of the window, not a whole one


def test_batches_split_by_engine_signature_and_hold_at_most_max_batch_images(tmp_path: Path) -> None:
    from fluxserve.engines.base import EngineConfig, EngineJob
    from fluxserve.engines.registry import EngineRegistry
    from fluxserve.tasks.records import TaskRecord
    from fluxserve.worker.batching import Member, batch_groups

    krea = EngineRegistry(EngineConfig(data_dir=tmp_path, weights="tiny", device="cpu")).get("flux1-krea-dev")

    def member(task_id: int, samples: int = 1, width: int = 64) -> Member:
        params = {
            "prompt": "p",
            "steps": 2,
            "scale": 3.5,
            "samples": samples,
            "seed": task_id,
            "width": width,
        }
        task = TaskRecord(
            task_id, "", "", 1, "t", {}, {}, {}, None, "", "", "0", "", {}, 1, False, "w", 0, "", 0
        )
        found = Member(task, tmp_path, None, None, engine=krea)  # type: ignore[arg-type]
        found.job = EngineJob(str(task_id), "t", {**params, "height": 64})
        return found

    members = [
        member(1),
        member(2, samples=2),
        member(3, width=80),
        member(4),
        member(5, samples=5),
        member(6),
    ]
    members[5].ended = True  # e.g. failed in preprocessing: not generated at all
    groups = batch_groups(members, max_rows=3)
    assert [[m.task.id for m in group] for group in groups] == [[1, 2], [4], [5], [3]]


def test_the_wait_stays_well_inside_the_lease_of_the_tasks_already_claimed(store: TaskStore) -> None:
    first = _queue(store, "A")
    clock = Clock(store)  # nobody arrives: the worker waits as long as it may
    batch = claim_batch(store, "w", 2, ["a/b"], 4, wait_seconds=60, sleep=clock.sleep, clock=clock)
    assert [task.id for task in batch] == [first]
    assert clock.now == pytest.approx(0.5)  # a quarter of the 2 s lease, not the 60 s asked for
