"""Task lifecycle over HTTP: kill, cancel, crash recovery, callbacks, failures that explain themselves."""

from __future__ import annotations

import time

import httpx

from tests.support.receiver import callback_receiver
from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"
QUICK = {"prompt": "a quiet harbour", "steps": 2, "width": 64, "height": 64, "seed": "1"}
LONG = {"prompt": "a slow painting", "steps": 100, "width": 256, "height": 256, "seed": "2"}


def _wait_running(service: Service, taskid: str, timeout: float = 120) -> dict:
    """Until the task is denoising (its debugoutput carries a progress line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = service.detail(taskid)
        if task["status"] == "task_start" and "progressGenerate" in task["debugoutput"]:
            return task
        assert task["status"] not in ("task_postprocess_end", "task_cancel"), task
        time.sleep(0.05)
    raise AssertionError(f"task {taskid} never started\n{service.log()[-3000:]}")


def test_kill_stops_a_running_task_within_steps_and_the_worker_keeps_serving(service: Service) -> None:
    taskid = service.run(KREA, **LONG)["taskid"]
    running = _wait_running(service, taskid)
    answer = service.post("/v1/Task/Kill", json={"socketaccesstoken": running["socketaccesstoken"]}).json()
    assert answer["result"] is True
    killed = answer["tasklist"][0]
    assert killed["status"] == "task_cancel" and killed["outputs"] == []
    assert killed["canceltime"] != "0"
    step = int(killed["debugoutput"].split("step ")[1].split("/")[0])
    assert step < 100  # it stopped mid-run instead of finishing the 100 steps
    after = service.wait(service.run(KREA, **QUICK)["taskid"])
    assert after["status"] == "task_postprocess_end" and after["pexit"] == "0"
    again = service.post("/v1/Task/Kill", json={"taskid": taskid})
    assert again.status_code == 200 and again.json()["result"] is False
    assert again.json()["errors"][0]["code"] == 1
    assert again.json()["errors"][0]["message"].startswith("Task could not be killed: it has already ended")


def test_cancel_ends_a_queued_task_and_refuses_an_ended_one(queue_only_service: Service) -> None:
    service = queue_only_service
    taskid = service.run(KREA, **QUICK)["taskid"]
    answer = service.post("/v1/Task/Cancel", json={"taskid": taskid}).json()
    assert answer["result"] is True and answer["tasklist"][0]["status"] == "task_cancel"
    assert service.detail(taskid)["canceltime"] != "0"
    again = service.post("/v1/Task/Cancel", json={"taskid": taskid})
    assert again.status_code == 200 and again.json()["result"] is False
    assert again.json()["errors"][0]["code"] == 1
    assert again.json()["errors"][0]["message"].startswith("Task is not in a cancellable state.")
    unknown = service.post("/v1/Task/Cancel", json={"taskid": "987654"})
    assert unknown.status_code == 200
    assert unknown.json()["errors"] == [{"code": 1, "message": "There is no task yet."}]


def test_a_hard_killed_server_runs_its_task_again_after_restart_and_keeps_the_queue(
    make_service, tmp_path
) -> None:
    data_dir = tmp_path / "crash"
    first = make_service(data_dir=data_dir)
    running = first.run(KREA, **LONG)["taskid"]
    queued = first.run(KREA, **QUICK)["taskid"]
    _wait_running(first, running)
    first.hard_kill()
    second = make_service(data_dir=data_dir)
    finished = second.wait(running, timeout=300)
    assert finished["status"] == "task_postprocess_end" and finished["pexit"] == "0"
    assert len(finished["outputs"]) == 1
    assert second.wait(queued)["status"] == "task_postprocess_end"


def test_a_task_that_keeps_killing_its_worker_fails_after_three_attempts(make_service, tmp_path) -> None:
    data_dir = tmp_path / "crashloop"
    server = make_service(data_dir=data_dir)
    taskid = server.run(KREA, **LONG)["taskid"]
    for _ in range(3):
        _wait_running(server, taskid)
        server.hard_kill()
        server = make_service(data_dir=data_dir)
    failed = server.wait(taskid, timeout=60)
    assert failed["status"] == "task_postprocess_end" and failed["pexit"] != "0"
    assert "stopped unexpectedly 3 times" in failed["debugerror"]
    assert failed["outputs"] == []


def test_callback_receives_the_detail_json_and_is_retried_after_a_failure(service: Service) -> None:
    with callback_receiver(statuses=[500]) as receiver:
        taskid = service.run(KREA, **QUICK, callbackUrl=receiver.url)["taskid"]
        # (the shared server may first finish tasks of tests running in parallel)
        assert receiver.event.wait(120), service.log()[-2000:]
    assert [r["status"] for r in receiver.received] == [500, 200]
    payload = receiver.received[-1]["json"]
    assert payload["result"] is True
    task = payload["tasklist"][0]
    assert task["id"] == taskid and task["status"] == "task_postprocess_end"
    assert task["outputs"][0]["name"] == "0.png"


def test_callback_is_sent_for_a_cancelled_task_too(queue_only_service: Service) -> None:
    with callback_receiver() as receiver:
        taskid = queue_only_service.run(KREA, **QUICK, callbackUrl=receiver.url)["taskid"]
        queue_only_service.post("/v1/Task/Cancel", json={"taskid": taskid})
        assert receiver.event.wait(30)
    assert receiver.received[0]["json"]["tasklist"][0]["status"] == "task_cancel"


def test_missing_weights_fail_the_task_with_instructions_and_the_server_keeps_running(
    make_service, tmp_path
) -> None:
    server = make_service(FLUXSERVE_WEIGHTS=str(tmp_path / "no-such-folder"))
    task = server.wait(server.run(KREA, **QUICK)["taskid"])
    assert task["status"] == "task_postprocess_end" and task["pexit"] != "0"
    assert task["outputs"] == []
    assert "FLUXSERVE_WEIGHTS" in task["debugerror"]
    assert "Traceback" not in task["debugerror"]
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_the_service_runs_and_recovers_tasks_on_postgresql(make_service, tmp_path, postgres) -> None:
    database = postgres.new_database()
    first = make_service(data_dir=tmp_path / "pg", FLUXSERVE_DATABASE_URL=database)
    done = first.wait(first.run(KREA, **QUICK)["taskid"])
    assert done["status"] == "task_postprocess_end" and done["pexit"] == "0"
    running = first.run(KREA, **LONG)["taskid"]
    _wait_running(first, running)
    first.hard_kill()
    second = make_service(data_dir=tmp_path / "pg", FLUXSERVE_DATABASE_URL=database)
    assert second.wait(running, timeout=300)["status"] == "task_postprocess_end"
    assert [task["id"] for task in second.post("/v1/Task/List", json={}).json()["tasklist"]] == [
        running,
        done["id"],
    ]
