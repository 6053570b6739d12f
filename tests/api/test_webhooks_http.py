"""A real server signs its callbacks with the project's secret from `fluxserve project show`; with
FLUXSERVE_LOG_FORMAT=json its task log lines name the task, project and tool."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from standardwebhooks import Webhook

from tests.support.receiver import callback_receiver
from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"


@pytest.fixture
def service(partner_local_service: Service) -> Service:
    """The run's shared server that logs JSON lines (tests/conftest.py); its default project is the
    one these tests call as and read the webhook secret of."""
    return partner_local_service


def test_a_callback_verifies_with_the_secret_that_project_show_prints(service: Service) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "fluxserve.cli", "project", "show", "default", "--json"],
        env=service.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    secret = json.loads(shown.stdout)["webhook_secret"]
    with callback_receiver(statuses=[500]) as receiver:
        run = service.run(KREA, prompt="p", steps="2", width="64", height="64", callbackUrl=receiver.url)
        service.wait(run["taskid"])
        assert receiver.event.wait(30)
        time.sleep(0.2)
    assert len(receiver.received) == 2  # one failure, one retry: the same event twice
    first, second = receiver.received
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    payload = Webhook(secret).verify(second["raw"], second["headers"])
    assert payload["tasklist"][0]["id"] == run["taskid"]
    assert payload["tasklist"][0]["status"] == "task_postprocess_end"


def test_json_logs_name_the_task_project_and_tool_on_every_task_line(service: Service) -> None:
    run = service.run(KREA, prompt="p", steps="2", width="64", height="64")
    service.wait(run["taskid"])
    time.sleep(0.5)
    entries = [json.loads(line) for line in service.log().splitlines() if line.startswith("{")]
    assert any(e["logger"] == "uvicorn.error" for e in entries)  # the server's own lines are JSON too
    mine = [e for e in entries if e.get("task_id") == run["taskid"]]
    messages = [e["message"] for e in mine]
    assert f"task {run['taskid']} queued" in messages
    assert any(m.startswith(f"task {run['taskid']} (") and "claimed" in m for m in messages)
    assert all(e["project"] == "default" and e["tool"] == KREA for e in mine)
    about_it = [e for e in entries if e["message"].startswith(f"task {run['taskid']} ")]
    assert about_it and all(e.get("task_id") == run["taskid"] for e in about_it)
