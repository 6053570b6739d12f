"""CallbackDispatcher: one bad delivery never stops the others, and every refusal shows in Detail.

A real store (SQLite in a temp dir), real loopback receivers; the dispatcher runs in this process.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.support.receiver import callback_receiver

from fluxserve.net import safe_fetch
from fluxserve.net.callbacks import CallbackDispatcher
from fluxserve.tasks import schema
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.store import TaskStore


@pytest.fixture
def store(tmp_path: Path) -> TaskStore:
    return TaskStore.open(f"sqlite:///{tmp_path / 'tasks.db'}")


def _ended_task(store: TaskStore, callback: str, parameters: dict | None = None) -> TaskRecord:
    project = store.ensure_project("key", "secret", True)
    task = store.create_task(project.id, "a/b", {}, parameters or {"prompt": "fox"}, callbackurl=callback)
    return store.cancel_queued(task)


def _render(task: TaskRecord) -> dict:
    if task.parameters.get("prompt") == "explode":
        raise RuntimeError("renderer broke")
    return {"result": True, "tasklist": [{"id": task.taskid, "parameters": task.parameters}]}


def _dispatcher(store: TaskStore, allow_private: bool = True) -> CallbackDispatcher:
    return CallbackDispatcher(store, _render, delays=[0.05], timeout=5, allow_private=allow_private)


def _settle(dispatcher: CallbackDispatcher, rounds: int = 10) -> None:
    for _ in range(rounds):
        if not dispatcher.deliver_due():
            return
        time.sleep(0.06)


def test_poisoned_deliveries_are_recorded_and_the_good_one_is_still_delivered(store: TaskStore) -> None:
    with callback_receiver() as receiver:
        control = _ended_task(store, receiver.url + "\x01x")  # httpx raises InvalidURL before connecting
        broken_ipv6 = _ended_task(store, "http://[::1/hook")
        crashing = _ended_task(store, receiver.url, {"prompt": "explode"})
        good = _ended_task(store, receiver.url, {"prompt": "fox"})
        _settle(_dispatcher(store))
        assert receiver.event.is_set()
    assert [r["json"]["tasklist"][0]["id"] for r in receiver.received] == [good.taskid]
    assert store.get(good.id).callback_state == "delivered"
    for task in (control, broken_ipv6, crashing):
        stored = store.get(task.id)
        assert stored.callback_state == "failed", stored
        assert "callbackUrl: not" in stored.debugoutput
    assert "control character" in store.get(control.id).debugoutput
    assert "renderer broke" in store.get(crashing.id).debugoutput


def test_the_thread_survives_and_keeps_delivering(store: TaskStore) -> None:
    with callback_receiver() as receiver:
        for url in ("http://127.0.0.1:1/\x7f", "ftp://127.0.0.1/x", "http://[::1"):
            _ended_task(store, url)
        dispatcher = _dispatcher(store)
        dispatcher.start()
        try:
            good = _ended_task(store, receiver.url)
            dispatcher.wake()
            assert receiver.event.wait(20)
            assert dispatcher.is_alive()
        finally:
            dispatcher.stop()
    assert receiver.received[0]["json"]["tasklist"][0]["id"] == good.taskid


def test_stored_lone_surrogates_are_scrubbed_before_sending(store: TaskStore) -> None:
    """A row written before the API refused such text (JSON columns keep it) is still deliverable."""
    with callback_receiver() as receiver:
        task = _ended_task(store, receiver.url, {"prompt": "\udc00 hi"})
        _settle(_dispatcher(store))
    assert receiver.received[0]["json"]["tasklist"][0]["parameters"]["prompt"] == "\ufffd hi"
    assert store.get(task.id).callback_state == "delivered"


def test_scheme_is_case_insensitive(store: TaskStore) -> None:
    with callback_receiver() as receiver:
        task = _ended_task(store, receiver.url.replace("http://", "HTTP://"))
        _settle(_dispatcher(store))
    assert store.get(task.id).callback_state == "delivered" and len(receiver.received) == 1


def test_a_private_destination_is_refused_and_the_refusal_shows_in_detail(store: TaskStore) -> None:
    with callback_receiver() as receiver:
        task = _ended_task(store, receiver.url)
        _settle(_dispatcher(store, allow_private=False))
    assert receiver.received == []
    stored = store.get(task.id)
    assert stored.callback_state == "failed" and stored.callback_attempts == 1
    assert "callbackUrl: not called" in stored.debugoutput and "127.0.0.1" in stored.debugoutput


def test_the_connection_is_pinned_and_ignores_proxy_settings(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A localhost name is resolved once and the POST goes to that address with the name in Host;
    HTTP(S)_PROXY from the environment is not used (the proxy here would refuse everything)."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")
    with callback_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        task = _ended_task(store, f"http://localhost:{port}/hook")
        _settle(_dispatcher(store))
    assert store.get(task.id).callback_state == "delivered"


def test_a_failing_store_write_does_not_kill_the_round(store: TaskStore, monkeypatch) -> None:
    with callback_receiver() as receiver:
        bad = _ended_task(store, "http://[::1")
        good = _ended_task(store, receiver.url)
        original = store.record_callback_attempt

        def flaky(task_id: int, **kwargs) -> None:
            if task_id == bad.id:
                raise sa.exc.OperationalError("UPDATE", {}, Exception("database is locked"))
            original(task_id, **kwargs)

        monkeypatch.setattr(store, "record_callback_attempt", flaky)
        _settle(_dispatcher(store))
    assert store.get(good.id).callback_state == "delivered"
    assert store.get(bad.id).callback_state == "pending"  # tried again later, not in a hot loop


def test_detail_reads_rows_with_bad_text_written_by_older_versions(store: TaskStore) -> None:
    task = _ended_task(store, "")
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.tasks)
            .where(schema.tasks.c.id == task.id)
            .values(parameters={"prompt": "\ud83d"}, inputs={"prompt": "\ud83d"})
        )
    assert store.get(task.id).parameters == {"prompt": "\ufffd"}
    assert [t.parameters for t in store.list(task.project_id, 0, 10)[1]] == [{"prompt": "\ufffd"}]
    httpx.Response(200, json=store.get(task.id).parameters)  # encodes as UTF-8 without error


def test_the_post_goes_to_the_checked_address_with_the_name_in_host(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once, by the guard; the connection goes to that address (no second
    lookup that a rebinding DNS could answer differently) and the name travels in Host."""
    name = "hooks.rebind.test"
    real_getaddrinfo = socket.getaddrinfo

    def literal_only(host, *args, **kwargs):
        if host == name:  # a second lookup would be the rebinding hole
            raise socket.gaierror(f"{name} must not be resolved again")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", literal_only)
    monkeypatch.setattr(
        safe_fetch,
        "_resolve",
        lambda host, port, timeout: [ipaddress.ip_address("127.0.0.1")] if host == name else [],
    )
    with callback_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        task = _ended_task(store, f"http://{name}:{port}/hook")
        _settle(_dispatcher(store))
    assert store.get(task.id).callback_state == "delivered"
    assert receiver.received[0]["headers"]["host"] == f"{name}:{port}"
