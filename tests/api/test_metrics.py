"""GET /metrics reads the store: an API process with no worker of its own reports the work of a
separate `fluxserve worker` process (queue depth, workers, outcomes, durations, callbacks)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.receiver import callback_receiver
from tests.support.service import LOOPBACK_TLS

KREA = "black-forest-labs/FLUX.1-Krea-dev"
SMALL = {"prompt": "p", "steps": "2", "width": "64", "height": "64"}


def scrape(base_url: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{base_url}/metrics", timeout=30, verify=LOOPBACK_TLS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_metrics_count_what_another_process_did(make_service) -> None:
    api = make_service(FLUXSERVE_WORKERS="0")
    with callback_receiver() as receiver:
        cancelled = api.run(KREA, **SMALL, callbackUrl=receiver.url)
        api.post("/v1/Task/Cancel", json={"taskid": cancelled["taskid"]})
        assert receiver.event.wait(30)
    ran = api.run(KREA, **SMALL)
    _wait_for(lambda: value(scrape(api.base_url), "fluxserve_callbacks_total", result="delivered") == 1)
    before = scrape(api.base_url)
    assert value(before, "fluxserve_queue_depth", tool=KREA) == 1
    assert value(before, "fluxserve_workers", tool=KREA) == 0
    assert (
        "fluxserve_queue_depth",
        (("tool", "wiro/flux_kontext_dev_with_2_image"),),
    ) in before  # every tool
    assert value(before, "fluxserve_tasks_total", tool=KREA, status="created") == 2
    assert value(before, "fluxserve_tasks_total", tool=KREA, status="cancelled") == 1

    worker = subprocess.Popen(
        [sys.executable, "-m", "fluxserve.cli", "worker"],
        env={**api.env(), "FLUXSERVE_WORKER_THREADS": "2"},  # one process, two task threads
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: value(scrape(api.base_url), "fluxserve_workers", tool=KREA) == 2)
        assert api.wait(ran["taskid"])["pexit"] == "0"
        after = scrape(api.base_url)
    finally:
        worker.terminate()
        worker.wait(30)
    assert value(after, "fluxserve_queue_depth", tool=KREA) == 0
    assert value(after, "fluxserve_tasks_total", tool=KREA, status="succeeded") == 1
    assert value(after, "fluxserve_tasks_total", tool=KREA, status="failed") == 0
    for phase in ("queue", "run"):
        assert value(after, "fluxserve_task_duration_seconds_count", tool=KREA, phase=phase) == 1
        assert value(after, "fluxserve_task_duration_seconds_bucket", tool=KREA, phase=phase, le="+Inf") == 1
        assert value(after, "fluxserve_task_duration_seconds_sum", tool=KREA, phase=phase) > 0
    # the queue wait includes the time before the worker started, so it is at least a bucket above 0.1 s
    assert value(after, "fluxserve_task_duration_seconds_bucket", tool=KREA, phase="queue", le="0.1") == 0
    assert value(scrape(api.base_url), "fluxserve_workers", tool=KREA) == 0  # a stopped worker leaves
