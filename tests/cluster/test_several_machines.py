"""One API process and two ``fluxserve worker`` processes, each with its own data folder, sharing
only a real PostgreSQL server and a real S3-compatible server (moto's, on 127.0.0.1) — the
multi-machine deployment of README "Run on several machines", on one host.

Worker A has the (loopback, fake) BFL key, so it can run the partner tool; worker B has none, so it
must never claim such a task. Everything runs on the tiny weights at 64x64.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from safetensors.torch import save_file

from fluxserve.engines.tiny import tiny_lora_state_dict
from fluxserve.tasks.store import TaskStore
from tests.engines.fake_bfl import FakeBfl
from tests.support.counting_files import counting_file_server
from tests.support.live import follow, is_progress
from tests.support.postgres import PostgresServer
from tests.support.receiver import callback_receiver
from tests.support.s3 import S3Server
from tests.support.service import LOOPBACK_TLS, Service
from tests.support.workers import WorkerProcess, wait_for_workers

KREA = "black-forest-labs/FLUX.1-Krea-dev"
ULTRA = "black-forest-labs/flux-pro-1-1-ultra"
FLUX2 = "black-forest-labs/flux-2-pro-t2i"
LORA = "wiro/text-to-image-flux-lora-fast"
QUICK = {"prompt": "a harbour at dawn", "steps": "2", "width": "64", "height": "64"}
LONG = {"prompt": "a slow painting", "steps": "100", "width": "256", "height": "256", "seed": "2"}


class Cluster:
    def __init__(self, api: Service, a: WorkerProcess, b: WorkerProcess, db_url: str, bucket: str) -> None:
        self.api, self.a, self.b, self.bucket = api, a, b, bucket
        self.store = TaskStore.open(db_url)
        self.db_url = db_url

    def worker_of(self, taskid: str) -> WorkerProcess:
        worker_id = self.store.get(int(taskid)).worker_id
        return next(worker for worker in (self.a, self.b) if worker.owns(worker_id))

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{p.log()[-4000:]}" for name, p in [("A", self.a), ("B", self.b)])

    def fluxserve(self, *args: str) -> subprocess.CompletedProcess:
        env = {**self.a.env(), "FLUXSERVE_DATABASE_URL": self.db_url}
        command = [sys.executable, "-m", "fluxserve.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def fake_bfl() -> Iterator[FakeBfl]:
    server = FakeBfl(api_key="bfl-cluster-key", pending_polls=1).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_weights_dir: Path,
    postgres: PostgresServer,
    s3_server: S3Server,
    fake_bfl: FakeBfl,
) -> Iterator[Cluster]:
    db_url, bucket = postgres.new_database(), s3_server.new_bucket()
    shared = {"FLUXSERVE_DATABASE_URL": db_url, **s3_server.env(bucket, prefix="cluster")}
    bfl = {"BFL_API_KEY": fake_bfl.api_key, "FLUXSERVE_BFL_URL": fake_bfl.base_url}
    # The API box has the key too (so Run accepts the partner tools) but runs no worker. Its live
    # followers' fallback read of the database is pushed out of reach, so whatever progress they
    # see came over the event channel (PostgreSQL LISTEN/NOTIFY) from a worker process.
    api_env = {**shared, **bfl, "FLUXSERVE_WORKERS": "0", "FLUXSERVE_LIVE_POLL_SECONDS": "600"}
    weights = str(tiny_weights_dir)
    api = Service(tmp_path_factory.mktemp("api"), weights=weights, env_overrides=api_env).start()
    public = {"FLUXSERVE_PUBLIC_URL": api.base_url}
    only = {"FLUXSERVE_WORKER_TOOLS": f"{KREA},{ULTRA},{LORA}"}  # nobody runs flux-2-pro here
    keyless = {"BFL_API_KEY": ""}
    a = WorkerProcess(tmp_path_factory.mktemp("box-a"), weights, {**shared, **bfl, **public, **only}).start()
    b = WorkerProcess(tmp_path_factory.mktemp("box-b"), weights, {**shared, **public, **keyless}).start()
    try:
        wait_for_workers(api, live=2)
        yield Cluster(api, a, b, db_url, bucket)
    finally:
        for process in (a, b):
            process.stop()
        api.stop()


def test_workers_register_what_they_can_run_and_a_task_nobody_can_run_says_why(cluster: Cluster) -> None:
    listing = cluster.fluxserve("workers", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {row["pid"]: row for row in json.loads(listing.stdout)}
    a, b = rows[cluster.a.pid], rows[cluster.b.pid]
    assert a["state"] == b["state"] == "live" and a["device"] == b["device"] == "cpu"
    assert sorted(a["tools"]) == sorted([KREA, ULTRA, LORA]) and a["version"]
    assert ULTRA not in b["tools"] and KREA in b["tools"]
    assert "BFL_API_KEY" in b["unavailable"][ULTRA]
    assert "FLUXSERVE_WORKER_TOOLS" in a["unavailable"][FLUX2]

    waiting = cluster.api.run(FLUX2, prompt="a lighthouse", width="64", height="64")["taskid"]
    time.sleep(1.5)  # several claim rounds of both workers
    task = cluster.api.detail(waiting)
    assert task["status"] == "task_queue"
    assert task["debugoutput"].startswith(f"Waiting for a worker that can run {FLUX2}: none of the 2 live")
    assert "BFL_API_KEY" in task["debugoutput"] and "FLUXSERVE_WORKER_TOOLS" in task["debugoutput"]
    cluster.api.post("/v1/Task/Cancel", json={"taskid": waiting})
    table = cluster.fluxserve("workers").stdout
    assert f":{cluster.b.pid}:" in table and f"cannot run {ULTRA}" in table


def test_twenty_tasks_over_two_tools_finish_and_download_through_the_api(
    cluster: Cluster, s3_server: S3Server
) -> None:
    with callback_receiver() as receiver:
        taskids = {
            cluster.api.run(tool, **QUICK, seed=str(n), callbackUrl=receiver.url)["taskid"]: tool
            for n in range(10)
            for tool in (KREA, ULTRA)
        }
        tasks = {taskid: cluster.api.wait(taskid, timeout=300) for taskid in taskids}
        deadline = time.monotonic() + 30
        while len(receiver.received) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # room for a duplicate delivery to show up
    for task in tasks.values():
        assert (task["status"], task["pexit"]) == ("task_postprocess_end", "0"), (task, cluster.logs())
        [output] = task["outputs"]
        body = httpx.get(output["url"], verify=LOOPBACK_TLS)
        assert body.status_code == 200 and len(body.content) == int(output["size"]) > 0
        name = f"cluster/outputs/{task['uuid']}/{output['name']}"
        assert s3_server.client().get_object(Bucket=cluster.bucket, Key=name)["Body"].read() == body.content
    ran_by = {taskid: cluster.worker_of(taskid) for taskid in taskids}
    assert all(ran_by[taskid] is cluster.a for taskid, tool in taskids.items() if tool == ULTRA)
    assert cluster.b.log().count("claimed") > 0, "worker B took no task at all"
    deliveries = collections.Counter(item["json"]["tasklist"][0]["id"] for item in receiver.received)
    assert deliveries == {taskid: 1 for taskid in taskids}  # one callback per task, from one process
    for box in (cluster.a, cluster.b):  # outputs went to the object store, not to a box's folder
        assert not (box.data_dir / "files").exists()


def test_a_lora_downloaded_by_one_worker_is_reused_by_the_other(cluster: Cluster, tmp_path: Path) -> None:
    save_file(tiny_lora_state_dict(seed=5), str(tmp_path / "mine.safetensors"))
    inputs = {**QUICK, "seed": "4"}
    with counting_file_server() as files:
        files.files["/mine.safetensors"] = (tmp_path / "mine.safetensors").read_bytes()
        url = f"{files.base_url}/mine.safetensors"
        first = cluster.api.wait(cluster.api.run(LORA, **inputs, selectedLoraModelPrivateUrl=url)["taskid"])
        downloader = cluster.worker_of(first["id"])
        other = cluster.b if downloader is cluster.a else cluster.a
        downloader.signal(signal.SIGSTOP)  # only the other worker may take the next task
        try:
            second = cluster.api.wait(
                cluster.api.run(LORA, **inputs, selectedLoraModelPrivateUrl=url)["taskid"], timeout=300
            )
        finally:
            downloader.signal(signal.SIGCONT)
        assert files.hits == {"/mine.safetensors": 1}
    for task in (first, second):
        assert (task["status"], task["pexit"]) == ("task_postprocess_end", "0"), task["debugerror"]
    assert cluster.worker_of(second["id"]) is other
    assert "taken from the shared store" in other.log()
    images = [httpx.get(task["outputs"][0]["url"]).content for task in (first, second)]
    assert images[0] == images[1]  # the same LoRA, applied on both boxes


def test_a_killed_worker_s_task_is_finished_by_the_other_and_followers_see_remote_progress(
    cluster: Cluster,
) -> None:
    wait_for_workers(cluster.api, live=2)
    run = cluster.api.run(KREA, **LONG)
    frames: list[dict] = []
    follower = threading.Thread(target=lambda: frames.extend(follow(cluster.api, run["socketaccesstoken"])))
    follower.start()
    deadline = time.monotonic() + 120
    while "progressGenerate" not in (task := cluster.api.detail(run["taskid"]))["debugoutput"]:
        assert time.monotonic() < deadline and task["status"] != "task_postprocess_end", cluster.logs()
        time.sleep(0.05)
    victim = cluster.worker_of(run["taskid"])
    survivor = cluster.b if victim is cluster.a else cluster.a
    victim.hard_kill()

    final = cluster.api.wait(run["taskid"], timeout=300)
    follower.join(60)
    assert (final["status"], final["pexit"]) == ("task_postprocess_end", "0"), (final, cluster.logs())
    assert cluster.worker_of(run["taskid"]) is survivor
    assert cluster.store.get(int(run["taskid"])).attempts == 2  # the killed run, then the survivor's
    assert httpx.get(final["outputs"][0]["url"]).status_code == 200
    # Progress of a worker in another process, live: a follower's opening replay holds at most one
    # progress frame, and its database fallback is 600 s away (FLUXSERVE_LIVE_POLL_SECONDS).
    assert sum(is_progress(frame) for frame in frames) >= 2, frames
    assert [frame["type"] for frame in frames].count("task_postprocess_end") == 1
    assert frames[-1]["type"] == "task_postprocess_end"
    # The SIGKILLed worker sent no goodbye: it counts as lost once its last heartbeat's expiry passes.
    assert wait_for_workers(cluster.api, live=1)["lost"] == 1


def test_draining_a_worker_finishes_its_task_then_it_leaves(cluster: Cluster) -> None:
    [survivor] = [worker for worker in (cluster.a, cluster.b) if worker.process.poll() is None]
    run = cluster.api.run(KREA, **LONG)
    while "progressGenerate" not in cluster.api.detail(run["taskid"])["debugoutput"]:
        time.sleep(0.05)
    rows = json.loads(cluster.fluxserve("workers", "--json").stdout)
    [row] = [row for row in rows if row["state"] == "live"]
    assert row["pid"] == survivor.pid

    drained = cluster.fluxserve("workers", "--drain", row["id"], "--json")
    assert drained.returncode == 0 and f"draining: {row['id']}" in drained.stderr
    assert survivor.process.wait(300) == 0  # it exits by itself once its task is done
    final = cluster.api.wait(run["taskid"])
    assert (final["status"], final["pexit"]) == ("task_postprocess_end", "0")
    assert cluster.store.get(int(run["taskid"])).attempts == 1  # finished, not abandoned and re-run
    states = [row["state"] for row in json.loads(cluster.fluxserve("workers", "--json").stdout)]
    assert states == ["lost"]  # the SIGKILLed worker of the previous test; the drained one left
    health = httpx.get(f"{cluster.api.base_url}/healthz").json()["workers"]
    assert health == {"live": 0, "draining": 0, "lost": 1}
    waiting = cluster.api.run(KREA, **QUICK)["taskid"]
    assert "no worker is running" in cluster.api.detail(waiting)["debugoutput"]
    unknown = cluster.fluxserve("workers", "--drain", "no-such-host")
    assert unknown.returncode == 1 and "no worker matches no-such-host" in unknown.stderr
