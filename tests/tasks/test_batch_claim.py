"""Batch claims (SQLite and PostgreSQL): a worker takes the oldest queued task and the queued tasks
with its batch key in one statement; concurrent claimers never share a task or mix keys."""

from __future__ import annotations

import threading

import pytest

from fluxserve.catalog import Catalog
from fluxserve.catalog.batching import batch_key
from fluxserve.catalog.request import validate_request
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore

LORA = "wiro/text-to-image-flux-lora-fast"
POSTER_SCALE = "Movie-poster-style-LoRA-Flux-v1.0"  # the scale setting id of LoRA 678


@pytest.fixture
def project_id(store: TaskStore) -> int:
    return store.ensure_project("key", "secret", True).id


def _queue(store: TaskStore, project_id: int, key: str, tool: str = "a/b") -> int:
    return store.create_task(project_id, tool, {"key": key}, {}, batch_key=key).id


def test_a_batch_is_the_oldest_task_and_its_company_up_to_the_limit(
    store: TaskStore, project_id: int
) -> None:
    ids = [_queue(store, project_id, key) for key in ("A", "B", "A", "", "A", "A", "")]
    batch = store.claim_batch("w", 30, limit=3)
    assert [task.id for task in batch] == [ids[0], ids[2], ids[4]]
    assert all(
        task.status is TaskStatus.ACCEPT and task.worker_id == "w" and task.attempts == 1 for task in batch
    )
    assert [task.id for task in store.claim_batch("w", 30, limit=3)] == [ids[1]]
    assert [task.id for task in store.claim_batch("w", 30, limit=3)] == [ids[3]]  # '' never batches
    assert [task.id for task in store.claim_batch("w", 30, limit=3)] == [ids[5]]
    assert [task.id for task in store.claim_batch("w", 30, limit=3)] == [ids[6]]
    assert store.claim_batch("w", 30, limit=3) == []


def test_claims_respect_tools_and_compatible_claims_join_later(store: TaskStore, project_id: int) -> None:
    other = _queue(store, project_id, "A", tool="other/tool")
    first = _queue(store, project_id, "A")
    assert [task.id for task in store.claim_batch("w", 30, tools=["a/b"], limit=4)] == [first]
    assert not store.has_queued(["a/b"]) and store.has_queued(["other/tool"])
    late = [_queue(store, project_id, "A") for _ in range(3)] + [_queue(store, project_id, "B")]
    joined = store.claim_compatible("w", 30, "A", tools=["a/b"], limit=2)
    assert [task.id for task in joined] == late[:2]
    assert store.claim_compatible("w", 30, "", tools=["a/b"], limit=2) == []
    assert store.get(other).status is TaskStatus.QUEUE


def _lora_key(**fields: str) -> str:
    tool = Catalog.builtin().get(LORA)
    raw = {"prompt": "a lion", "width": "64", "height": "64", "steps": "2", **fields}
    return batch_key(tool, validate_request(tool, raw).values)


def test_tasks_with_different_lora_sets_or_scales_are_never_claimed_together(
    store: TaskStore, project_id: int
) -> None:
    keys = {
        "base": _lora_key(),
        "poster": _lora_key(selectedLoraModel="678"),
        "poster other prompt and seed": _lora_key(selectedLoraModel="678", prompt="a cat", seed="9"),
        "poster at 0.5": _lora_key(selectedLoraModel="678", **{POSTER_SCALE: "0.5"}),
        "poster and pencil": _lora_key(selectedLoraModel="678,1239"),
    }
    assert keys["poster"] == keys["poster other prompt and seed"]
    assert len({keys[name] for name in keys if name != "poster other prompt and seed"}) == 4
    order = ["base", "poster", "poster at 0.5", "poster and pencil", "poster other prompt and seed", "base"]
    ids = [store.create_task(project_id, LORA, {"n": name}, {}, batch_key=keys[name]).id for name in order]
    batches = []
    while batch := store.claim_batch("w", 30, limit=8):
        batches.append([order[ids.index(task.id)] for task in batch])
    assert batches == [
        ["base", "base"],
        ["poster", "poster other prompt and seed"],
        ["poster at 0.5"],
        ["poster and pencil"],
    ]


def test_concurrent_batch_claims_share_no_task_and_mix_no_keys(store: TaskStore, project_id: int) -> None:
    keys = ["A", "B", "C", ""]
    expected = {_queue(store, project_id, keys[index % 4]): keys[index % 4] for index in range(48)}
    batches: list[list[tuple[int, str]]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        start.wait()
        while batch := store.claim_batch(name, 30, limit=4):
            with lock:
                batches.append([(task.id, task.batch_key) for task in batch])

    threads = [threading.Thread(target=worker, args=(f"w{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [task_id for batch in batches for task_id, _ in batch]
    assert sorted(claimed) == sorted(expected)  # every task once, none twice
    for batch in batches:
        assert 1 <= len(batch) <= 4
        assert len({key for _, key in batch}) == 1
        assert batch[0][1] != "" or len(batch) == 1
    assert any(len(batch) > 1 for batch in batches)
