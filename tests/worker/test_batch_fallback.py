"""A batched pipeline call that fails as a whole (e.g. a batch too big for the GPU's memory) does not
fail its tasks: the worker runs each member alone instead, and every task ends with its own image —
the same bytes a worker that never batches gives it. An in-process worker on tiny weights and a real
SQLite store; the failure is injected into the engine's batched call only."""

from __future__ import annotations

from pathlib import Path

from fluxserve.catalog import Catalog
from fluxserve.catalog.batching import batch_key
from fluxserve.catalog.request import validate_request
from fluxserve.engines.base import EngineConfig
from fluxserve.engines.registry import EngineRegistry
from fluxserve.storage import open_storage
from fluxserve.tasks.store import TaskStore
from fluxserve.worker.runner import Worker, WorkerOptions

KREA = "black-forest-labs/FLUX.1-Krea-dev"


class _NoEvents:
    def publish(self, event) -> None:
        pass


def _worker(tmp_path: Path, weights: Path, max_batch: int) -> tuple[Worker, TaskStore, list[int]]:
    tmp_path.mkdir(parents=True)
    store = TaskStore.open(f"sqlite:///{tmp_path / 'tasks.db'}")
    project = store.ensure_project("key", "secret", False)
    tool = Catalog.builtin().get(KREA)
    ids = []
    for seed, prompt in ((3, "a red fox"), (4, "a blue whale")):
        raw = {"prompt": prompt, "seed": str(seed), "steps": "2", "width": "64", "height": "64"}
        values = validate_request(tool, raw).values
        ids.append(store.create_task(project.id, KREA, values, {}, batch_key=batch_key(tool, values)).id)
    engines = EngineRegistry(EngineConfig(data_dir=tmp_path / "data", weights=str(weights), device="cpu"))
    options = WorkerOptions(work_dir=tmp_path / "work", max_batch=max_batch, device="cpu")
    files = open_storage("", tmp_path / "files")
    return Worker(store, Catalog.builtin(), engines, files, _NoEvents(), options), store, ids


def _image(worker: Worker, store: TaskStore, task_id: int) -> bytes:
    task = store.get(task_id)
    assert task.pexit == "0", task.debugerror
    assert task.status.value == "task_postprocess_end" and len(task.outputs) == 1
    return worker.storage.fetch(task.outputs[0].storage_key, worker.options.work_dir / "fetched").read_bytes()


def test_a_failed_batched_call_runs_each_member_alone(tmp_path: Path, tiny_weights_dir: Path) -> None:
    worker, store, ids = _worker(tmp_path / "batched", tiny_weights_dir, max_batch=4)
    engine = worker.engines.get(Catalog.builtin().get(KREA).engine)
    calls: list[int] = []

    def out_of_memory(items):
        calls.append(len(items))
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    engine.generate_batch = out_of_memory  # the batched call fails; single calls are untouched
    assert worker.run_once()  # one claim takes both tasks
    assert calls == [2]
    for task_id in ids:
        task = store.get(task_id)
        assert "batch" not in task.debugoutput  # they did not run in one batch after all
    alone, alone_store, alone_ids = _worker(tmp_path / "alone", tiny_weights_dir, max_batch=1)
    while alone.run_once():
        pass
    for task_id, reference in zip(ids, alone_ids, strict=True):
        assert _image(worker, store, task_id) == _image(alone, alone_store, reference)
