"""Cancel and Kill racing claim and finish, on PostgreSQL, with two `fluxserve worker` processes.

Every task ends exactly once (one terminal time stamped, one signed callback event), a cancelled task
has no outputs (in Detail or in storage), and the tasks nobody touched still succeed.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests.support.receiver import callback_receiver

KREA = "black-forest-labs/FLUX.1-Krea-dev"
ENDED = ("task_postprocess_end", "task_cancel")


def test_cancel_and_kill_race_claim_and_finish_on_postgresql(make_service, tmp_path: Path, postgres) -> None:
    data_dir = tmp_path / "race"
    api = make_service(
        data_dir=data_dir,
        FLUXSERVE_DATABASE_URL=postgres.new_database(),
        FLUXSERVE_WORKERS="0",
        FLUXSERVE_LEASE_SECONDS="30",  # no lease lapses on a loaded machine: this test is about the race
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "fluxserve.cli", "worker"],
            env={**api.env(), "FLUXSERVE_WORKERS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    rng = random.Random(14)
    try:
        with callback_receiver() as receiver:
            tasks = []  # (taskid, how it is attacked)
            for index in range(16):
                plan = ("at-once", "later", "when-running", "left-alone")[index % 4]
                steps = "100" if plan == "when-running" else str(rng.choice([2, 4, 8]))
                run = api.run(
                    KREA, prompt="p", steps=steps, width="64", height="64", callbackUrl=receiver.url
                )
                tasks.append((run["taskid"], plan))

            def attack(taskid: str, plan: str) -> None:
                if plan == "later":
                    time.sleep(rng.uniform(0, 4))
                elif plan == "when-running":  # Kill racing the worker's steps and its finish
                    while api.detail(taskid)["status"] not in ("task_start", "task_output", *ENDED):
                        time.sleep(0.05)
                actions = ["/v1/Task/Cancel", "/v1/Task/Kill"]
                rng.shuffle(actions)
                threads = [
                    threading.Thread(target=api.post, args=(path,), kwargs={"json": {"taskid": taskid}})
                    for path in actions
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

            attackers = [
                threading.Thread(target=attack, args=(taskid, plan))
                for taskid, plan in tasks
                if plan != "left-alone"
            ]
            for thread in attackers:
                thread.start()
            for thread in attackers:
                thread.join()
            finals = {taskid: api.wait(taskid, timeout=300) for taskid, _ in tasks}
            deadline = time.monotonic() + 60
            while len({r["headers"]["webhook-id"] for r in receiver.received}) < len(tasks):
                assert time.monotonic() < deadline, "callbacks missing"
                time.sleep(0.1)
            time.sleep(2)  # a duplicate delivery would arrive now
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)

    events = Counter(r["headers"]["webhook-id"] for r in receiver.received)
    assert set(events.values()) == {1}  # one end, one event, delivered once across three dispatchers
    assert set(events) == {"msg_" + task["uuid"].replace("-", "") for task in finals.values()}
    outcomes = Counter()
    for taskid, plan in tasks:
        task = finals[taskid]
        ended_at = [task["canceltime"] != "0", task["postprocessendtime"] != "0"]
        assert ended_at.count(True) == 1, task  # ended exactly once
        if task["status"] == "task_cancel":
            assert task["outputs"] == []
            assert not (data_dir / "files" / "outputs" / task["uuid"]).exists()
            outcomes["cancel" if task["starttime"] == "0" else "kill"] += 1
        else:
            assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", (
                task["debugerror"],
                task["debugoutput"],
                plan,
            )
            assert len(task["outputs"]) == 1
            outcomes["done"] += 1
        if plan == "left-alone":
            assert task["status"] == "task_postprocess_end"
    print("outcomes:", dict(outcomes))
    assert outcomes["cancel"] >= 1 and outcomes["kill"] >= 1 and outcomes["done"] >= 4
