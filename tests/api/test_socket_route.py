"""The /v1 socket route's registration handling, in process (Starlette's TestClient)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fluxserve.api.routes import socket
from fluxserve.tasks.status import TaskStatus
from tests.support.live import fake_services, task_record


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.include_router(socket.router)
    app.state.services = fake_services(task_record())
    return TestClient(app)


def _refusal(client: TestClient, send) -> dict:
    with client.websocket_connect("/v1") as ws:
        send(ws)
        frame = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1000
    assert frame["result"] is False and frame["errors"][0]["message"] == frame["message"]
    return frame


def test_silence_after_connecting_is_refused_after_the_timeout(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "REGISTER_TIMEOUT_SECONDS", 0.05)
    assert "No task_info" in _refusal(client, lambda ws: None)["message"]


def test_binary_registration_is_refused(client: TestClient) -> None:
    assert "text frame" in _refusal(client, lambda ws: ws.send_bytes(b"{}"))["message"]


def test_other_message_types_and_missing_tokens_are_refused(client: TestClient) -> None:
    assert "task_info" in _refusal(client, lambda ws: ws.send_json({"type": "hello"}))["message"]
    assert "tasktoken" in _refusal(client, lambda ws: ws.send_json({"type": "task_info"}))["message"]


def test_known_token_over_the_route_gets_its_state(client: TestClient) -> None:
    client.app.state.services.store.task = task_record(TaskStatus.CANCEL)
    with client.websocket_connect("/v1") as ws:
        ws.send_json({"type": "task_info", "tasktoken": "tok"})
        acknowledgement = ws.receive_json()
        frame = ws.receive_json()
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    assert acknowledgement == {
        "type": "task_info",
        "id": "7",
        "tasktoken": "tok",
        "message": None,
        "result": True,
    }
    assert (frame["type"], frame["id"], frame["message"]) == ("task_cancel", "7", [])
