"""`fluxserve serve` with worker processes: a torch-free API process, two tasks at once, a worker
SIGKILLed mid-task and restarted, Kill and live progress carried by the channel alone.

The server here runs with its store fallbacks switched off (FLUXSERVE_LIVE_POLL_SECONDS and
FLUXSERVE_KILL_POLL_SECONDS at an hour), so a frame or a kill that arrives in time can only have
come over the event channel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluxserve.tasks.store import TaskStore
from tests.support.live import STATUS_ORDER, is_progress, read_all, register, statuses
from tests.support.procfs import niceness
from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"
QUICK = {"prompt": "a quiet harbour", "steps": 6, "width": 64, "height": 64, "seed": "1"}
SLOW = {"prompt": "a slow painting", "steps": 100, "width": 512, "height": 512, "seed": "2"}
WORKER_ONLY = {"prompt": "a long night", "steps": 40, "width": 256, "height": 256, "seed": "3"}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Iterator[Service]:
    server = Service(
        tmp_path_factory.mktemp("two-workers"),
        weights=str(tiny_weights_dir),
        env_overrides={
            "FLUXSERVE_WORKERS": "2",
            "FLUXSERVE_LIVE_POLL_SECONDS": "3600",
            "FLUXSERVE_KILL_POLL_SECONDS": "3600",
        },
    ).start()
    _warm_up(server)
    yield server
    server.stop()


def _warm_up(service: Service) -> None:
    """Both workers load the tiny model once (two tasks at a time until each worker ran one).

    A worker claims nothing until it has imported torch & co., which on a loaded machine can take
    one of them far longer than the other: the rounds go on for up to two minutes, half a second
    apart, not for a fixed number of rounds."""
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        taskids = [service.run(KREA, **QUICK)["taskid"] for _ in range(2)]
        for taskid in taskids:
            assert service.wait(taskid, timeout=300)["pexit"] == "0"
            workers.add(_worker_pid(service, taskid))
        if len(workers) == 2:
            return
        time.sleep(0.5)
    raise AssertionError(f"one worker ran every task for two minutes: {workers}")


def _store(service: Service) -> TaskStore:
    return service.open_store()


def _worker_pid(service: Service, taskid: str) -> int:
    worker_id = _store(service).get(int(taskid)).worker_id
    return int(worker_id.split(":")[1])


def _worker_processes(service: Service) -> list[int]:
    """The API process's spawned worker children (not multiprocessing's resource tracker)."""
    assert service.process is not None
    threads = Path(f"/proc/{service.process.pid}/task").iterdir()  # restarts come from another thread
    children = [c for thread in threads for c in (thread / "children").read_text().split()]
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _loads_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def _wait_running(service: Service, *taskids: str, timeout: float = 180) -> None:
    """Until every task is denoising at the same moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = [service.detail(taskid) for taskid in taskids]
        if all(t["status"] == "task_start" and "progressGenerate" in t["debugoutput"] for t in tasks):
            return
        assert not any(t["status"] in ("task_postprocess_end", "task_cancel") for t in tasks), tasks
        time.sleep(0.05)
    raise AssertionError(f"tasks {taskids} were never running together\n{service.log()[-3000:]}")


def _kill(service: Service, taskid: str) -> dict:
    answer = service.post("/v1/Task/Kill", json={"taskid": taskid}).json()
    assert answer["result"] is True, answer
    return answer["tasklist"][0]


def test_assembling_and_serving_the_api_imports_no_torch(tmp_path: Path) -> None:
    script = f"""
import sys
from starlette.testclient import TestClient
from fluxserve.config import Settings
from fluxserve.runtime import build_runtime
runtime = build_runtime(Settings(data_dir={str(tmp_path)!r}, api_key="k", api_secret="s",
                                 require_signature=False, workers=0))
runtime.start_background()
with TestClient(runtime.app()) as client:
    assert client.post("/v1/Tool/List", headers={{"x-api-key": "k"}}, json={{}}).json()["result"]
    detail = client.post("/v1/Task/Detail", headers={{"x-api-key": "k"}}, json={{"taskid": "1"}})
    assert detail.status_code == 200
runtime.stop_background()
print(sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "diffusers", "transformers")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_api_process_has_no_torch_while_its_worker_processes_do(two_workers: Service) -> None:
    task = two_workers.wait(two_workers.run(KREA, **QUICK)["taskid"])
    assert task["status"] == "task_postprocess_end" and task["pexit"] == "0"
    workers = _worker_processes(two_workers)
    assert len(workers) == 2
    assert _worker_pid(two_workers, task["id"]) in workers
    assert any(_loads_torch(pid) for pid in workers)  # the check can see torch where it is loaded
    assert two_workers.process is not None and not _loads_torch(two_workers.process.pid)
    # the HTTP thread yields to generation (FLUXSERVE_API_NICE, default 10); the workers do not
    assert niceness(two_workers.process.pid) == 10 and [niceness(pid) for pid in workers] == [0, 0]


def test_two_worker_processes_run_two_tasks_at_once(two_workers: Service) -> None:
    first = two_workers.run(KREA, **SLOW)["taskid"]
    second = two_workers.run(KREA, **SLOW)["taskid"]
    _wait_running(two_workers, first, second)
    assert _worker_pid(two_workers, first) != _worker_pid(two_workers, second)
    for taskid in (first, second):
        assert _kill(two_workers, taskid)["status"] == "task_cancel"


def test_kill_reaches_the_worker_process_over_the_channel_within_a_step(two_workers: Service) -> None:
    run = two_workers.run(KREA, **SLOW)
    _wait_running(two_workers, run["taskid"])
    killed = _kill(two_workers, run["taskid"])
    assert killed["status"] == "task_cancel"
    # "Killed by request (killed at step N/100). The request reached this worker after step M."
    text = killed["debugoutput"]
    stopped = int(text.split("killed at step ")[1].split("/")[0])
    assert "reached this worker after step" in text, text  # over the channel: the store's flag is
    arrived = int(text.split("after step ")[1].rstrip("."))  # not read for an hour in this server
    assert stopped < 100 and arrived <= stopped <= arrived + 1, text


def test_a_socket_follower_gets_a_worker_process_progress_over_the_channel(two_workers: Service) -> None:
    run = two_workers.run(KREA, **QUICK)
    with register(two_workers, run["socketaccesstoken"]) as socket:
        frames = read_all(socket, timeout=60)
    # With the store fallback off, every status after the registration, the progress and the end
    # frame with its outputs came from the worker process over the channel.
    assert statuses(frames) == STATUS_ORDER
    assert any(is_progress(frame) for frame in frames)
    assert frames[-1]["message"][0]["name"] == "0.png"


def test_a_sigkilled_worker_process_is_restarted_and_its_task_finishes(two_workers: Service) -> None:
    taskid = two_workers.run(KREA, **WORKER_ONLY)["taskid"]
    _wait_running(two_workers, taskid)
    victim = _worker_pid(two_workers, taskid)
    os.kill(victim, signal.SIGKILL)
    done = two_workers.wait(taskid, timeout=300)
    assert done["status"] == "task_postprocess_end" and done["pexit"] == "0", done
    record = _store(two_workers).get(int(taskid))
    assert record.attempts == 2 and _worker_pid(two_workers, taskid) != victim
    deadline = time.monotonic() + 60
    while len(_worker_processes(two_workers)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _worker_processes(two_workers)
    assert len(workers) == 2 and victim not in workers
    assert "worker 0" in two_workers.log() or "worker 1" in two_workers.log()
    assert "restarting in" in two_workers.log()


def test_cpu_threads_are_shared_out_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    from fluxserve.config import Settings
    from fluxserve.supervisor import worker_specs

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [s.torch_threads for s in worker_specs(Settings(workers=2), cpu_count=8)] == [4, 4]
    assert [s.device for s in worker_specs(Settings(devices="cuda:0,cuda:1"), cpu_count=8)] == [
        "cuda:0",
        "cuda:1",
    ]
    assert worker_specs(Settings(workers=0, devices="cuda:0"), cpu_count=8) == []
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert [s.torch_threads for s in worker_specs(Settings(workers=2), cpu_count=8)] == [0, 0]
    assert [s.torch_threads for s in worker_specs(Settings(workers=2, torch_threads=3))] == [3, 3]
