"""SIGTERM drains a ``fluxserve worker``: the running task finishes, then the process exits 0 and
leaves the directory. (SQLite and a shared ``file://`` storage folder here: the same code path as
PostgreSQL and S3, at a fraction of the set-up cost.)"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from fluxserve.tasks.store import TaskStore
from tests.support.service import Service
from tests.support.workers import WorkerProcess, wait_for_workers

KREA = "black-forest-labs/FLUX.1-Krea-dev"
LONG = {"prompt": "a slow painting", "steps": "100", "width": "256", "height": "256", "seed": "3"}


def test_sigterm_lets_the_running_task_finish_then_the_worker_exits(
    make_service: Callable[..., Service], tmp_path: Path, tiny_weights_dir: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    shared = {"FLUXSERVE_DATABASE_URL": database, "FLUXSERVE_STORAGE_URL": f"file://{tmp_path / 'files'}"}
    api = make_service(FLUXSERVE_WORKERS="0", **shared)
    worker = WorkerProcess(
        tmp_path / "box", str(tiny_weights_dir), {**shared, "FLUXSERVE_PUBLIC_URL": api.base_url}
    ).start()
    try:
        wait_for_workers(api, live=1)
        run = api.run(KREA, **LONG)
        while "progressGenerate" not in api.detail(run["taskid"])["debugoutput"]:
            assert worker.process.poll() is None, worker.log()
            time.sleep(0.05)
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(300) == 0, worker.log()
    finally:
        worker.stop()
    task = api.wait(run["taskid"], timeout=5)  # already ended: the worker finished it before leaving
    assert (task["status"], task["pexit"]) == ("task_postprocess_end", "0"), task["debugerror"]
    assert TaskStore.open(database).get(int(run["taskid"])).attempts == 1
    assert httpx.get(task["outputs"][0]["url"]).status_code == 200
    assert httpx.get(f"{api.base_url}/healthz").json()["workers"] == {"live": 0, "draining": 0, "lost": 0}
    assert "draining" in worker.log()
