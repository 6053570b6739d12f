"""The event channel both ways, in process: the Unix socket (embedded) and LISTEN/NOTIFY (PostgreSQL)."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from fluxserve.channel import Control
from fluxserve.channel.codec import MAX_NOTIFY_BYTES, decode, encode_event, fit_notify
from fluxserve.channel.local import LocalHub, LocalLink, socket_path
from fluxserve.channel.postgres import PgApiEndpoint, PgWorkerEndpoint
from fluxserve.tasks.events import TaskEvent
from tests.support.postgres import PostgresServer

PROGRESS = TaskEvent("7", "tok", "task_output", {"stepCurrent": "3"}, droppable=True)


def _next(items: queue.Queue, timeout: float = 10.0):
    return items.get(timeout=timeout)


def test_events_and_controls_keep_their_fields_through_the_codec() -> None:
    origin, event = decode(encode_event(PROGRESS, "api-1"))
    assert origin == "api-1" and event == PROGRESS
    huge = TaskEvent("7", "tok", "task_error", "x" * 20000)
    _origin, cut = decode(fit_notify(huge, "o"))
    assert len(fit_notify(huge, "o")) <= MAX_NOTIFY_BYTES and cut.message.startswith("xxx")


def test_a_long_data_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    assert socket_path(tmp_path) == tmp_path.resolve() / "channel.sock"
    deep = tmp_path / ("d" * 120)
    assert len(str(socket_path(deep))) < 108 and socket_path(deep) == socket_path(deep)


def test_unix_socket_carries_events_to_the_api_and_kills_to_every_worker(tmp_path: Path) -> None:
    events: queue.Queue = queue.Queue()
    controls: list[queue.Queue] = [queue.Queue(), queue.Queue()]
    hub = LocalHub(socket_path(tmp_path), events.put)
    hub.start()
    links = [LocalLink(hub.path, inbox.put) for inbox in controls]
    for link in links:
        link.start()
        assert link.wait_connected(10)
    try:
        links[1].send_event(PROGRESS)
        assert _next(events) == PROGRESS
        while hub.connected() < 2:
            threading.Event().wait(0.01)
        hub.send_control(Control("kill", 7))
        assert [_next(inbox) for inbox in controls] == [Control("kill", 7)] * 2
    finally:
        for link in links:
            link.stop()
        hub.stop()


def test_a_worker_link_reconnects_when_the_api_process_comes_back(tmp_path: Path) -> None:
    events: queue.Queue = queue.Queue()
    first = LocalHub(socket_path(tmp_path), events.put)
    first.start()
    link = LocalLink(first.path, lambda control: None, retry_seconds=0.05)
    link.start()
    assert link.wait_connected(10)
    first.stop()
    second = LocalHub(socket_path(tmp_path), events.put)
    second.start()
    try:
        deadline = time.monotonic() + 60
        while second.connected() < 1:  # the link notices the lost hub and dials again
            assert time.monotonic() < deadline, "the worker link never reconnected to the new hub"
            link.send_event(PROGRESS)
            threading.Event().wait(0.02)
        link.send_event(PROGRESS)
        assert _next(events) == PROGRESS
    finally:
        link.stop()
        second.stop()


def test_listen_notify_carries_events_and_controls_across_connections(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    events: list[queue.Queue] = [queue.Queue(), queue.Queue()]
    controls: queue.Queue = queue.Queue()
    apis = [PgApiEndpoint(url, inbox.put) for inbox in events]
    worker = PgWorkerEndpoint(url, controls.put)
    for endpoint in (*apis, worker):
        endpoint.start()
    try:
        worker.send_event(PROGRESS)
        assert [_next(inbox) for inbox in events] == [PROGRESS, PROGRESS]  # every API process hears it
        apis[0].send_control(Control("kill", 7))
        assert _next(controls) == Control("kill", 7)
        ended = TaskEvent("7", "tok", "task_cancel", [], terminal=True)
        apis[0].share_event(ended)  # a Cancel decided by one API process reaches the others ...
        assert _next(events[1]) == ended
        worker.send_event(PROGRESS)
        assert _next(events[0]) == PROGRESS  # ... but not itself: its next message is the worker's
    finally:
        for endpoint in (*apis, worker):
            endpoint.stop()
