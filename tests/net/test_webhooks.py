"""Signed callbacks (Standard Webhooks): the signature, one event id across retries, a receiver that
was down, giving up, and resuming after a restart. A real store, real loopback receivers, and the
``standardwebhooks`` reference library on the receiving side."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from tests.support.receiver import callback_receiver
from tests.support.service import free_port

from fluxserve.net.callbacks import CallbackDispatcher
from fluxserve.net.webhooks import event_id_for_task, signature, signed_headers
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.store import TaskStore


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


def _render(task: TaskRecord) -> dict:
    return {"total": "1", "errors": [], "tasklist": [{"id": task.taskid, "status": task.status.value}]}


def _ended_task(store: TaskStore, url: str) -> TaskRecord:
    project = store.projects.create("hooks")
    task = store.create_task(project.id, "a/b", {}, {"prompt": "fox"}, callbackurl=url)
    return store.cancel_queued(task)


def _dispatcher(store: TaskStore, delays: list[float]) -> CallbackDispatcher:
    return CallbackDispatcher(
        store, _render, delays=delays, timeout=5, allow_private=True, poll_interval=0.02
    )


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _secret(store: TaskStore, task: TaskRecord) -> str:
    project = store.projects.by_id(task.project_id)
    assert project is not None
    return project.webhook_secret


def test_the_signature_is_the_reference_librarys() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"result": true, "\xc3\xa9": 1}'
    headers = signed_headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", body, now=1614265330)
    assert headers["webhook-timestamp"] == "1614265330"
    reference = Webhook(secret).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", _datetime(1614265330), body.decode())
    assert headers["webhook-signature"] == reference
    assert signature(secret, "msg_other", 1614265330, body) != reference
    assert event_id_for_task("9b2f0c4e-1d2a-4f7e-8a6b-0c1d2e3f4a5b") == "msg_9b2f0c4e1d2a4f7e8a6b0c1d2e3f4a5b"


def _datetime(stamp: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, tz=UTC)


def test_every_retry_carries_the_same_event_id_and_a_valid_signature(db_url: str) -> None:
    store = TaskStore.open(db_url)
    with callback_receiver(statuses=[500, 502]) as receiver:
        task = _ended_task(store, receiver.url)
        dispatcher = _dispatcher(store, [0.05, 0.05, 0.05])
        dispatcher.start()
        try:
            _wait_for(lambda: store.get(task.id).callback_state == "delivered")
        finally:
            dispatcher.stop()
    assert [r["status"] for r in receiver.received] == [500, 502, 200]
    ids = {r["headers"]["webhook-id"] for r in receiver.received}
    assert ids == {event_id_for_task(task.uuid)}
    webhook = Webhook(_secret(store, task))
    for request in receiver.received:
        assert webhook.verify(request["raw"], request["headers"])["tasklist"][0]["id"] == task.taskid
    tampered = {**receiver.received[-1]["headers"], "webhook-id": "msg_forged"}
    with pytest.raises(Exception, match="No matching signature"):
        webhook.verify(receiver.received[-1]["raw"], tampered)


def test_delivery_after_the_receiver_was_down_longer_than_the_first_retries(db_url: str) -> None:
    store = TaskStore.open(db_url)
    port = free_port()  # nothing listens here yet: connection refused
    task = _ended_task(store, f"http://127.0.0.1:{port}/hook")
    dispatcher = _dispatcher(store, [0.05, 0.05, 0.05, 0.3, 0.3, 0.3])
    dispatcher.start()
    try:
        _wait_for(lambda: store.get(task.id).callback_attempts >= 3)  # the first retries failed
        assert store.get(task.id).callback_state == "pending"
        with callback_receiver(port=port) as receiver:
            _wait_for(lambda: store.get(task.id).callback_state == "delivered")
    finally:
        dispatcher.stop()
    assert len(receiver.received) == 1 and store.get(task.id).callback_attempts >= 4
    request = receiver.received[0]
    assert request["headers"]["webhook-id"] == event_id_for_task(task.uuid)
    assert Webhook(_secret(store, task)).verify(request["raw"], request["headers"])


def test_giving_up_after_the_last_retry_is_recorded_in_debugoutput(db_url: str) -> None:
    store = TaskStore.open(db_url)
    with callback_receiver(statuses=[503] * 10) as receiver:
        task = _ended_task(store, receiver.url)
        dispatcher = _dispatcher(store, [0.02, 0.02])
        dispatcher.start()
        try:
            _wait_for(lambda: store.get(task.id).callback_state == "failed")
        finally:
            dispatcher.stop()
    stored = store.get(task.id)
    assert len(receiver.received) == 3 and stored.callback_attempts == 3
    assert "callbackUrl: not delivered after 3 attempts (last: HTTP 503)." in stored.debugoutput
    assert stored.debugoutput.startswith("Cancelled while queued.")  # the earlier text is kept


def test_pending_deliveries_resume_after_a_restart_with_the_same_event_id(db_url: str) -> None:
    port = free_port()
    before = TaskStore.open(db_url)
    task = _ended_task(before, f"http://127.0.0.1:{port}/hook")
    first = _dispatcher(before, [0.2, 0.2, 0.2])
    first.start()
    _wait_for(lambda: before.get(task.id).callback_attempts >= 1)
    first.stop()  # the process goes away with the delivery still pending
    before.engine.dispose()
    assert TaskStore.open(db_url).get(task.id).callback_state == "pending"

    after = TaskStore.open(db_url)  # a new process: new engine, new dispatcher
    with callback_receiver(port=port) as receiver:
        second = _dispatcher(after, [0.2, 0.2, 0.2])
        second.start()
        try:
            _wait_for(lambda: after.get(task.id).callback_state == "delivered")
        finally:
            second.stop()
    assert len(receiver.received) == 1
    assert receiver.received[0]["headers"]["webhook-id"] == event_id_for_task(task.uuid)
    assert Webhook(_secret(after, task)).verify(receiver.received[0]["raw"], receiver.received[0]["headers"])
