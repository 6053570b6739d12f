"""Cross-request batching through a real server: compatible queued tasks share one pipeline call
(each with its own statuses, progress, previews and outputs), mixed LoRA sets never share one, Kill of one
member leaves the others running, and a worker SIGKILLed mid-batch has every member recovered.

The worker here waits up to 2 s for company (FLUXSERVE_BATCH_WAIT_MS), but the tests do not rely on
that timing (a loaded machine can take longer than 2 s over three Runs): each batch is queued behind a
blocker task that keeps the worker busy, and the blocker is killed once the batch is queued, so the
worker's next claim finds every member waiting.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from fluxserve.tasks.store import TaskStore
from tests.support.service import LOOPBACK_TLS, Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"
LORA = "wiro/text-to-image-flux-lora-fast"
POSTER_SCALE = "Movie-poster-style-LoRA-Flux-v1.0"
PIXEL_TOLERANCE = 2  # README, Batching
QUICK = {"steps": "2", "width": "64", "height": "64"}
SLOW = {"steps": "60", "width": "256", "height": "256"}
BLOCKER = {"steps": "100", "width": "512", "height": "512"}  # busy for seconds, until it is killed


@pytest.fixture(scope="module")
def batching(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Iterator[Service]:
    server = Service(
        tmp_path_factory.mktemp("batching"),
        weights=str(tiny_weights_dir),
        env_overrides={
            "FLUXSERVE_MAX_BATCH": "4",
            "FLUXSERVE_BATCH_WAIT_MS": "2000",
            "FLUXSERVE_PREVIEW_EVERY_STEPS": "5",
        },
    ).start()
    server.wait(server.run(KREA, prompt="warm up", **QUICK)["taskid"], timeout=300)  # model loaded
    yield server
    server.stop()


def _store(service: Service) -> TaskStore:
    return service.open_store()


def _pixels(service: Service, task: dict) -> np.ndarray:
    data = httpx.get(task["outputs"][0]["url"], timeout=30, verify=LOOPBACK_TLS).content
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _queue_behind_a_blocker(service: Service, runs: list[dict]) -> list[str]:
    """Queue ``runs`` while the worker is busy, then free it: its next claim takes them together."""
    blocker = service.run(KREA, prompt="keeps the worker busy", seed="1", **BLOCKER)["taskid"]
    _wait_denoising(service, [blocker])
    taskids = [service.run(KREA, **values)["taskid"] for values in runs]
    assert service.post("/v1/Task/Kill", json={"taskid": blocker}).json()["result"] is True
    return taskids


def _wait_all(service: Service, taskids: list[str], timeout: float = 300) -> list[dict]:
    return [service.wait(taskid, timeout=timeout) for taskid in taskids]


def _wait_denoising(service: Service, taskids: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = [service.detail(taskid) for taskid in taskids]
        if all(t["status"] == "task_start" and "progressGenerate" in t["debugoutput"] for t in tasks):
            return
        assert not any(t["status"] in ("task_postprocess_end", "task_cancel") for t in tasks), tasks
        time.sleep(0.05)
    raise AssertionError(f"tasks {taskids} never denoised together\n{service.log()[-3000:]}")


def _wait_previews(service: Service, taskids: list[str], timeout: float = 120) -> list[str]:
    """Each running task's latest preview, from Detail's debugoutput."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [service.detail(taskid)["debugoutput"] for taskid in taskids]
        if all('"preview":"data:image/jpeg;base64,' in line for line in lines):
            return [json.loads(line)["preview"] for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"no preview for every task of {taskids}: {lines}")


def test_batched_tasks_each_end_with_their_own_image_equal_to_a_single_run(batching: Service) -> None:
    inputs = [{"prompt": f"a harbour {index}", "seed": str(10 + index), **QUICK} for index in range(3)]
    taskids = _queue_behind_a_blocker(batching, inputs)
    tasks = _wait_all(batching, taskids)
    for task in tasks:
        assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", task
        assert "ran in one batch with 2 other task(s)" in task["debugoutput"], task["debugoutput"]
        assert task["starttime"] != "0" and len(task["outputs"]) == 1
    assert len({task["outputs"][0]["url"] for task in tasks}) == 3
    alone = batching.wait(batching.run(KREA, **inputs[1])["taskid"])
    assert "batch" not in alone["debugoutput"]
    assert np.abs(_pixels(batching, alone) - _pixels(batching, tasks[1])).max() <= PIXEL_TOLERANCE
    assert np.abs(_pixels(batching, tasks[0]) - _pixels(batching, tasks[1])).max() > 10 * PIXEL_TOLERANCE


def test_tasks_with_different_lora_sets_are_never_batched_together(batching: Service) -> None:
    blocker = batching.run(KREA, prompt="keeps the worker busy", seed="1", **BLOCKER)["taskid"]
    _wait_denoising(batching, [blocker])
    lora = {"prompt": "a lion", **QUICK}
    runs = {
        "poster": batching.run(LORA, selectedLoraModel="678", seed="1", **lora)["taskid"],
        "base": batching.run(LORA, seed="2", **lora)["taskid"],
        "poster again": batching.run(LORA, selectedLoraModel="678", seed="3", **lora)["taskid"],
        "poster at 0.5": batching.run(
            LORA, selectedLoraModel="678", seed="4", **{POSTER_SCALE: "0.5"}, **lora
        )["taskid"],
        "pencil": batching.run(LORA, selectedLoraModel="1239", seed="5", **lora)["taskid"],
    }
    assert batching.post("/v1/Task/Kill", json={"taskid": blocker}).json()["result"] is True
    done = {name: batching.wait(taskid, timeout=300) for name, taskid in runs.items()}
    for name, task in done.items():
        assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", (name, task)
    assert "ran in one batch with 1 other task(s)" in done["poster"]["debugoutput"]
    assert "ran in one batch with 1 other task(s)" in done["poster again"]["debugoutput"]
    for name in ("base", "poster at 0.5", "pencil"):
        assert "batch" not in done[name]["debugoutput"], (name, done[name]["debugoutput"])
    assert "at scale 0.5" in done["poster at 0.5"]["debugoutput"]


def test_killing_one_member_leaves_the_others_running_to_their_outputs(batching: Service) -> None:
    taskids = _queue_behind_a_blocker(
        batching, [{"prompt": f"a storm {index}", "seed": str(index), **SLOW} for index in range(3)]
    )
    _wait_denoising(batching, taskids)
    worker_ids = {_store(batching).get(int(taskid)).worker_id for taskid in taskids}
    assert len(worker_ids) == 1  # one worker, one batch
    assert len(set(_wait_previews(batching, taskids))) == 3  # each member previews its own image
    answer = batching.post("/v1/Task/Kill", json={"taskid": taskids[1]}).json()
    assert answer["result"] is True and answer["tasklist"][0]["status"] == "task_cancel", answer
    assert "Killed by request (killed at step" in answer["tasklist"][0]["debugoutput"]
    first, killed, last = _wait_all(batching, taskids)
    assert killed["status"] == "task_cancel" and killed["outputs"] == []
    for task in (first, last):
        assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", task
        assert len(task["outputs"]) == 1 and "ran in one batch with 2 other task(s)" in task["debugoutput"]


def test_a_worker_sigkilled_mid_batch_has_every_member_recovered(batching: Service) -> None:
    taskids = _queue_behind_a_blocker(
        batching, [{"prompt": f"a night {index}", "seed": str(index), **SLOW} for index in range(3)]
    )
    _wait_denoising(batching, taskids)
    records = [_store(batching).get(int(taskid)) for taskid in taskids]
    assert len({record.worker_id for record in records}) == 1
    victim = int(records[0].worker_id.split(":")[1])
    os.kill(victim, signal.SIGKILL)
    for task in _wait_all(batching, taskids, timeout=400):
        assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", task
        assert len(task["outputs"]) == 1
    for taskid in taskids:
        record = _store(batching).get(int(taskid))
        assert record.attempts == 2 and int(record.worker_id.split(":")[1]) != victim
