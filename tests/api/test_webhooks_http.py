"""A real server signs its callbacks with the project's secret from `fluxserve project show`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from standardwebhooks import Webhook

from tests.support.receiver import callback_receiver

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def test_a_callback_verifies_with_the_secret_that_project_show_prints(make_service) -> None:
    service = make_service()
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
