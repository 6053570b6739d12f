"""The worker directory (SQLite and a real PostgreSQL server), the API's view of it, and how a
worker works out which tools it can run."""

from __future__ import annotations

import time
from pathlib import Path

from fluxserve.api.cluster import ClusterView
from fluxserve.catalog import Catalog
from fluxserve.engines.base import EngineConfig
from fluxserve.engines.registry import EngineRegistry
from fluxserve.tasks.store import TaskStore
from fluxserve.tasks.workers import WorkerDirectory, WorkerInfo
from fluxserve.worker.capabilities import assess
from fluxserve.worker.listing import worker_lines

KREA = "black-forest-labs/FLUX.1-Krea-dev"
ULTRA = "black-forest-labs/flux-pro-1-1-ultra"


def _info(worker_id: str, tools: list[str], **unavailable: str) -> WorkerInfo:
    return WorkerInfo(worker_id, "box", 1, "cpu", tools, {ULTRA: unavailable["ultra"]} if unavailable else {})


def test_register_beat_drain_and_states(store: TaskStore) -> None:
    directory = WorkerDirectory(store.engine)
    directory.register(_info("gpu-1:10:a", [KREA, ULTRA]), ttl=30)
    directory.register(_info("gpu-2:11:b", [KREA], ultra="BFL_API_KEY is not set"), ttl=30)
    directory.register(_info("gpu-3:12:c", [KREA]), ttl=-1)  # its heartbeat already lapsed

    assert directory.beat("gpu-1:10:a", ttl=30) is False
    assert directory.drain(["gpu-2"]) == ["gpu-2:11:b"]  # a host name drains all its workers
    assert directory.beat("gpu-2:11:b", ttl=30) is True
    assert directory.beat("gone:1:x", ttl=30) is None
    now = time.time()
    states = {row.info.id: row.state(now) for row in directory.all()}
    assert states == {"gpu-1:10:a": "live", "gpu-2:11:b": "draining", "gpu-3:12:c": "lost"}
    assert [row.info.id for row in directory.live()] == ["gpu-1:10:a", "gpu-2:11:b"]
    [second] = [row for row in directory.all() if row.info.id == "gpu-2:11:b"]
    assert second.info.tools == [KREA] and second.info.unavailable == {ULTRA: "BFL_API_KEY is not set"}

    assert directory.forget_lost(older_than=60) == 0
    assert directory.forget_lost(older_than=0, now=time.time() + 1) == 1
    directory.unregister("gpu-1:10:a")
    assert [row.info.id for row in directory.all()] == ["gpu-2:11:b"]


def test_the_running_tasks_of_each_worker_are_listed(store: TaskStore) -> None:
    directory = WorkerDirectory(store.engine)
    project = store.ensure_project("key", "secret", True).id
    directory.register(_info("w:1:a", [KREA]), ttl=30)
    task = store.create_task(project, KREA, {}, {})
    assert store.claim("w:1:a", 30, tools=[KREA]).id == task.id
    [row] = directory.all()
    assert row.running == [task.id]
    lines = worker_lines([row])
    assert "w:1:a" in lines[1] and str(task.id) in lines[1] and "live" in lines[1]


def test_waiting_notes_and_cluster_availability(store: TaskStore) -> None:
    directory = WorkerDirectory(store.engine)
    catalog = Catalog.builtin()
    view = ClusterView(directory, catalog, local_reason=lambda engine: "no key here", cache_seconds=0)
    assert "no worker is running" in view.waiting_note(KREA)
    assert view.availability(catalog.get(ULTRA).engine) == "no key here"

    directory.register(_info("gpu-2:11:b", [KREA], ultra="BFL_API_KEY is not set"), ttl=30)
    assert view.waiting_note(KREA) is None
    assert view.waiting_note(ULTRA) == (
        f"Waiting for a worker that can run {ULTRA}: none of the 1 live worker can "
        "(gpu-2:11:b: BFL_API_KEY is not set)."
    )
    assert view.availability(catalog.get(KREA).engine) is None  # a live worker runs it
    assert view.availability(catalog.get(ULTRA).engine) == "no key here"

    directory.register(_info("gpu-1:10:a", [KREA, ULTRA]), ttl=30)
    assert view.waiting_note(ULTRA) is None and view.availability(catalog.get(ULTRA).engine) is None
    assert view.counts() == {"live": 2, "draining": 0, "lost": 0}


def test_capabilities_follow_keys_weights_and_the_operators_list(tmp_path: Path, tiny_weights_dir) -> None:
    catalog = Catalog.builtin()
    keyless = assess(catalog, EngineRegistry(EngineConfig(data_dir=tmp_path, weights="tiny")))
    assert KREA in keyless.tools and ULTRA not in keyless.tools
    assert "BFL_API_KEY" in keyless.unavailable[ULTRA]

    keyed = EngineRegistry(EngineConfig(data_dir=tmp_path, weights="tiny", bfl_api_key="k"))
    assert ULTRA in assess(catalog, keyed).tools
    only = assess(catalog, keyed, only=[ULTRA])
    assert only.tools == [ULTRA] and "FLUXSERVE_WORKER_TOOLS" in only.unavailable[KREA]

    partial = tmp_path / "weights"
    (partial / "black-forest-labs").mkdir(parents=True)
    (partial / KREA).symlink_to(tiny_weights_dir / KREA)
    folder = assess(catalog, EngineRegistry(EngineConfig(data_dir=tmp_path, weights=str(partial))))
    assert KREA in folder.tools
    lora_reason = folder.unavailable["wiro/text-to-image-flux-lora-fast"]
    assert "black-forest-labs/FLUX.1-dev/transformer" in lora_reason
