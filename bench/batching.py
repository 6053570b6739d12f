"""Cross-request batching: the same queued tasks run batched vs one at a time, side by side.

Usage: ``python bench/batching.py [--weights DIR] [--count 8] [--size 128] [--steps 4] [--rounds 3]``.
Without ``--weights`` it builds the tiny FLUX.1 weights in a temporary folder. Each case queues
``--count`` Krea tasks in a fresh SQLite store and times an in-process worker (the real claim →
preprocess → generate → PNG → store path, no HTTP) from start until every task has ended:

* same shape: every task at ``--size``², ``--steps`` steps, different prompts and seeds —
  ``FLUXSERVE_MAX_BATCH=count`` (one batched call) vs ``1`` (one call per task);
* mixed shapes: every task a different width (no two can share a loop), the same two settings —
  batching falls back to single calls; the figure is what the attempt costs.

One untimed round first (model loading, and torch's slow first call at each new shape and batch
size). Modes alternate within each round (the machine may be shared). Printed per case: wall time
(median and min over the rounds) and the process's CPU time (median); then the ratios.
Set ``OMP_NUM_THREADS=1`` to run like a supervised worker sharing two cores.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import torch

from fluxserve.catalog import Catalog
from fluxserve.catalog.batching import batch_key
from fluxserve.catalog.request import validate_request
from fluxserve.engines.base import EngineConfig
from fluxserve.engines.registry import EngineRegistry
from fluxserve.engines.tiny import build_tiny_weights
from fluxserve.storage import open_storage
from fluxserve.tasks import schema
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore
from fluxserve.worker.runner import Worker, WorkerOptions

KREA = "black-forest-labs/FLUX.1-Krea-dev"


class _NoEvents:
    def publish(self, event) -> None:
        pass


def _queue(store: TaskStore, project_id: int, shapes: list[tuple[int, int]], steps: int) -> list[int]:
    tool = Catalog.builtin().get(KREA)
    ids = []
    for index, (width, height) in enumerate(shapes):
        raw = {"prompt": f"a lighthouse, take {index}", "seed": str(index), "steps": str(steps)}
        values = validate_request(tool, {**raw, "width": str(width), "height": str(height)}).values
        ids.append(store.create_task(project_id, KREA, values, {}, batch_key=batch_key(tool, values)).id)
    return ids


def _ended(store: TaskStore) -> int:
    t = schema.tasks
    ended = [TaskStatus.POSTPROCESS_END.value, TaskStatus.CANCEL.value]
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(t.c.status.in_(ended))).scalar_one()


def _run_case(
    engines: EngineRegistry, folder: Path, shapes, steps: int, max_batch: int, wait_ms: float
) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for one worker to end every queued task (the worker
    starts after they are queued). CPU time is what the work cost even when other jobs share the
    cores; wall time is what a client waits."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store = TaskStore.open(f"sqlite:///{folder / 'tasks.db'}")
    project = store.ensure_project("bench", "secret", False)
    ids = _queue(store, project.id, shapes, steps)
    options = WorkerOptions(
        lease_seconds=60,
        poll_interval=0.01,
        work_dir=folder / "work",
        max_batch=max_batch,
        batch_wait_seconds=wait_ms / 1000,
        device="cpu",
    )
    worker = Worker(
        store, Catalog.builtin(), engines, open_storage("", folder / "files"), _NoEvents(), options
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    worker.start()
    try:
        while _ended(store) < len(ids):  # one cheap query: polling must not steal the worker's CPU
            time.sleep(0.02)
        elapsed = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        worker.stop()
        store.engine.dispose()
    failed = [task_id for task_id in ids if store.get(task_id).pexit != "0"]
    if failed:
        raise SystemExit(f"tasks {failed} failed")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wait-ms", type=float, default=10.0, help="FLUXSERVE_BATCH_WAIT_MS (default 10)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="fluxserve-bench-batching-"))
    try:
        weights = args.weights or build_tiny_weights(scratch / "weights")
        engines = EngineRegistry(EngineConfig(data_dir=scratch / "data", weights=str(weights), device="cpu"))
        same = [(args.size, args.size)] * args.count
        mixed = [(args.size + 16 * index, args.size) for index in range(args.count)]
        cases = {
            ("same shape", "batched"): (same, args.count),
            ("same shape", "one at a time"): (same, 1),
            ("mixed shapes", "batched"): (mixed, args.count),
            ("mixed shapes", "one at a time"): (mixed, 1),
        }
        walls: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
        cpus: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
        for shapes, max_batch in cases.values():  # untimed: loads the model, and torch's first
            _run_case(
                engines, scratch / "warm", shapes, args.steps, max_batch, args.wait_ms
            )  # call per shape
        for round_index in range(args.rounds):
            order = list(cases.items())  # reversed every other round: no case always follows another
            for case, (shapes, max_batch) in order if round_index % 2 == 0 else order[::-1]:
                wall, cpu = _run_case(engines, scratch / "case", shapes, args.steps, max_batch, args.wait_ms)
                walls[case].append(wall)
                cpus[case].append(cpu)
        print(
            f"{args.count} queued Krea tasks, {args.size}px, {args.steps} steps, "
            f"{torch.get_num_threads()} torch thread(s), batch wait {args.wait_ms:g} ms, {args.rounds} rounds"
        )
        for case in cases:
            runs = ", ".join(f"{value:.2f}" for value in walls[case])
            print(
                f"{case[0]:>13} {case[1]:>14}: wall median {statistics.median(walls[case]):6.2f} s "
                f"min {min(walls[case]):6.2f} s | CPU median {statistics.median(cpus[case]):6.2f} s  "
                f"(wall runs: {runs})"
            )
        for shape in ("same shape", "mixed shapes"):
            single, batched = (shape, "one at a time"), (shape, "batched")
            print(
                f"{shape:>13}: one-at-a-time / batched = "
                f"wall median {statistics.median(walls[single]) / statistics.median(walls[batched]):.2f}x, "
                f"wall min {min(walls[single]) / min(walls[batched]):.2f}x, "
                f"CPU median {statistics.median(cpus[single]) / statistics.median(cpus[batched]):.2f}x"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
