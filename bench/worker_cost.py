"""A worker's own CPU per task: everything but the pipeline call (claim, status moves, progress line,
PNG storage, the end, events), on the real store and worker, tiny weights.

The worker runs in this process on this thread (``Worker.run_once`` until the queue is empty), and
the figure is the thread's CPU time minus the engine's ``generate`` (which includes the PNG encoding
both sides of ``bench/overhead.py`` pay) — CPU time, so other jobs on the machine barely move it.
Usage: ``python bench/worker_cost.py [--count 40] [--runs 5] [--size 64] [--steps 4]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batching import _NoEvents, _queue

KREA = "black-forest-labs/FLUX.1-Krea-dev"


class _TimedGenerate:
    """Wraps an engine's ``generate`` and adds up the thread CPU time spent in it."""

    def __init__(self, engine) -> None:
        self.seconds = 0.0
        self._generate = engine.generate
        engine.generate = self

    def __call__(self, *args, **kwargs):
        started = time.thread_time()
        try:
            return self._generate(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="tasks per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    import torch

    from fluxserve.catalog import Catalog
    from fluxserve.engines.base import EngineConfig
    from fluxserve.engines.registry import EngineRegistry
    from fluxserve.engines.tiny import build_tiny_weights
    from fluxserve.storage import open_storage
    from fluxserve.tasks.store import TaskStore
    from fluxserve.worker.runner import Worker, WorkerOptions

    torch.set_num_threads(1)
    scratch = Path(tempfile.mkdtemp(prefix="fluxserve-bench-worker-"))
    try:
        weights = build_tiny_weights(scratch / "weights")
        engines = EngineRegistry(EngineConfig(data_dir=scratch / "data", weights=str(weights), device="cpu"))
        timer = _TimedGenerate(engines.get(Catalog.builtin().get(KREA).engine))

        def run(count: int) -> tuple[float, float]:
            folder = scratch / "run"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            store = TaskStore.open(f"sqlite:///{folder / 'tasks.db'}")
            project = store.ensure_project("bench", "secret", False)
            _queue(store, project.id, [(args.size, args.size)] * count, args.steps)
            options = WorkerOptions(work_dir=folder / "work", max_batch=1, device="cpu")
            files = open_storage("", folder / "files")
            worker = Worker(store, Catalog.builtin(), engines, files, _NoEvents(), options)
            timer.seconds = 0.0
            started = time.thread_time()
            while worker.run_once():
                pass
            total = time.thread_time() - started
            store.engine.dispose()
            return (total - timer.seconds) / count, timer.seconds / count

        run(4)  # model load and torch's first calls
        figures = [run(args.count) for _ in range(args.runs)]
        own = [1000 * figure[0] for figure in figures]
        generate = statistics.median(1000 * figure[1] for figure in figures)
        print(f"{args.count} Krea tasks per run, {args.size}²/{args.steps} steps, one torch thread")
        print(f"worker CPU per task outside the pipeline call: median {statistics.median(own):.2f} ms")
        print(f"  (runs: {', '.join(f'{value:.2f}' for value in own)}; pipeline + PNG: {generate:.1f} ms)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
