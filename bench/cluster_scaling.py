"""Cluster scaling: the same N tiny-model tasks through one API process and (a) one, then (b) two
``fluxserve worker`` processes — each with its own data folder, sharing only a real PostgreSQL
server and a real S3-compatible server (moto's) on 127.0.0.1, as in README "Run on several
machines". Each worker runs single-threaded (torch threads = 1).

Prints tasks/s for one and for two workers and their ratio, measured in one run. Usage:
    .venv/bin/python bench/cluster_scaling.py [--count 40] [--size 64] [--steps 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import start_postgres
from tests.support.s3 import start_s3
from tests.support.service import Service
from tests.support.workers import WorkerProcess, wait_for_workers

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def tasks_per_second(api: Service, count: int, size: int, steps: int) -> float:
    """Queue ``count`` tasks at once, then wait until all have ended; the rate over the whole run."""
    inputs = {"prompt": "a lighthouse", "width": str(size), "height": str(size), "steps": str(steps)}
    started = time.monotonic()
    taskids = [api.run(KREA, **inputs, seed=str(n))["taskid"] for n in range(count)]
    for taskid in taskids:
        task = api.wait(taskid, timeout=1800)
        assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", task["debugerror"]
    return count / (time.monotonic() - started)


def run(workers: int, base: Path, weights: Path, db_url: str, s3, args) -> float:
    bucket = s3.new_bucket()
    shared = {"FLUXSERVE_DATABASE_URL": db_url, **s3.env(bucket)}
    api = Service(base / f"api-{workers}", str(weights), {**shared, "FLUXSERVE_WORKERS": "0"}).start()
    boxes = [
        WorkerProcess(
            base / f"box-{workers}-{n}", str(weights), {**shared, "FLUXSERVE_PUBLIC_URL": api.base_url}
        )
        for n in range(workers)
    ]
    try:
        for box in boxes:
            box.start()
        wait_for_workers(api, live=workers)
        tasks_per_second(api, workers, args.size, args.steps)  # warm-up: every worker loads its model
        return tasks_per_second(api, args.count, args.size, args.steps)
    finally:
        for box in boxes:
            box.stop()
        api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    from fluxserve.engines.tiny import build_tiny_weights

    postgres = start_postgres()
    if postgres is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        s3 = start_s3(base)
        try:
            weights = build_tiny_weights(base / "weights")
            one = run(1, base, weights, postgres.new_database(), s3, args)
            two = run(2, base, weights, postgres.new_database(), s3, args)
        finally:
            s3.stop()
            postgres.stop()
    print(
        f"{args.count} tasks, tiny FLUX.1, {args.size}x{args.size}, {args.steps} steps, 1 torch thread each"
    )
    print(f"one worker process  : {one:6.2f} tasks/s")
    print(f"two worker processes: {two:6.2f} tasks/s")
    print(f"two / one           : {two / one:6.2f}")


if __name__ == "__main__":
    main()
