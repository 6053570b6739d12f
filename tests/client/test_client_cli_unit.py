"""CLI behaviour that needs no real server: interrupts, argument errors, JSON output."""

from __future__ import annotations

import json

import pytest
import typer
from client_fakes import Reply, task_json, tasklist
from typer.testing import CliRunner

from fluxserve.client.cli import register
from fluxserve.client.sync import Client

KREA = "black-forest-labs/FLUX.1-Krea-dev"
RUN = f"/v1/Run/{KREA}"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def invoke(app, fake_api, *args: str):
    env = {"FLUXSERVE_URL": fake_api.base_url, "FLUXSERVE_API_KEY": "k", "FLUXSERVE_API_SECRET": "s"}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_ctrl_c_while_waiting_says_the_task_keeps_running(app, fake_api, monkeypatch):
    fake_api.routes[RUN] = [
        Reply(200, {"errors": [], "taskid": "77", "socketaccesstoken": "t", "result": True})
    ]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "wait", interrupted)
    result = invoke(app, fake_api, "run", KREA, "-p", "x")
    assert result.exit_code == 130
    assert "task 77 keeps running" in result.stderr and "fluxserve task kill 77" in result.stderr
    assert "Traceback" not in result.output


def test_run_sends_set_values_as_strings(app, fake_api):
    fake_api.routes[RUN] = [
        Reply(200, {"errors": [], "taskid": "5", "socketaccesstoken": "t", "result": True})
    ]
    result = invoke(
        app, fake_api, "run", KREA, "-p", "a fox", "-s", "steps=4", "-s", "scale=3.5", "--no-wait"
    )
    assert result.exit_code == 0 and result.stdout.strip() == "5"
    [call] = fake_api.calls(RUN)
    assert call.json() == {"prompt": "a fox", "steps": "4", "scale": "3.5"}
    assert call.headers["x-api-key"] == "k" and "x-signature" in call.headers


def test_task_list_json(app, fake_api):
    fake_api.routes["/v1/Task/List"] = [tasklist(task_json("3", "task_queue"), task_json("2", "task_cancel"))]
    result = invoke(app, fake_api, "task", "list", "--json", "--limit", "2")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["total"] == 2 and [task["id"] for task in body["tasklist"]] == ["3", "2"]
    assert fake_api.calls("/v1/Task/List")[0].json() == {"start": "0", "limit": "2"}


def test_task_kill_by_token(app, fake_api):
    fake_api.routes["/v1/Task/Kill"] = [tasklist(task_json("4", "task_cancel"))]
    result = invoke(app, fake_api, "task", "kill", "--token", "tok-4")
    assert result.exit_code == 0 and "task_cancel" in result.stdout
    assert fake_api.calls("/v1/Task/Kill")[0].json() == {"socketaccesstoken": "tok-4"}
