"""Every process runs a callback dispatcher: each due delivery is handed to exactly one of them."""

from __future__ import annotations

import threading

from fluxserve.tasks.store import TaskStore


def test_racing_dispatchers_each_get_a_task_once_until_the_hold_lapses(store: TaskStore) -> None:
    project = store.projects.create("p").id
    ids = set()
    for _ in range(12):
        task = store.create_task(project, "a/b", {}, {}, callbackurl="http://127.0.0.1:9/hook")
        ids.add(store.cancel_queued(task).id)
    now = max(store.get(task_id).times["canceltime"] for task_id in ids) + 1
    claimed: list[list[int]] = [[] for _ in range(4)]
    barrier = threading.Barrier(4)

    def dispatcher(index: int) -> None:
        barrier.wait()
        for _ in range(40):  # until everything is handed out (a round may lose every race)
            claimed[index] += [task.id for task in store.due_callbacks(now, limit=5, hold_seconds=60)]
            if sum(map(len, claimed)) >= len(ids):
                return

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [task_id for ids_of_one in claimed for task_id in ids_of_one]
    assert sorted(everything) == sorted(ids)  # every one handed out, none twice
    assert store.due_callbacks(now + 59) == []  # held while its dispatcher delivers
    assert {task.id for task in store.due_callbacks(now + 61, limit=50)} == ids  # a dead dispatcher's lapse
