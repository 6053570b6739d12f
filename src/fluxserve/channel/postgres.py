"""The channel over PostgreSQL LISTEN/NOTIFY: works across machines that share the database.

Two NOTIFY channels: ``fluxserve_events`` (worker -> API processes: task events; API processes also
share the ends they decide, tagged with their origin so they skip their own) and
``fluxserve_control`` (API -> workers: kill, wake). Each endpoint keeps one listening connection
(re-opened after a failure) and one connection for sending.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa

from fluxserve.channel import Control, ControlHandler, EventHandler
from fluxserve.channel.codec import decode, encode_control, fit_notify
from fluxserve.tasks.events import TaskEvent

log = logging.getLogger(__name__)

EVENTS = "fluxserve_events"
CONTROL = "fluxserve_control"


def conninfo(database_url: str) -> str:
    """A libpq connection string from the store's SQLAlchemy URL (``postgresql+psycopg://…``)."""
    url = sa.engine.make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class _Notifier:
    """Sends NOTIFYs on one autocommit connection, re-opened when it breaks."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def notify(self, channel: str, payload: bytes) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._dsn, autocommit=True)
                    self._conn.execute("SELECT pg_notify(%s, %s)", (channel, payload.decode()))
                    return
                except psycopg.Error:
                    self.close_locked()
                    if attempt == 2:
                        log.warning("NOTIFY on %s failed; followers fall back to the store", channel)

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def close_locked(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None


def project_changes_listener(database_url: str, on_change: Callable[[], None]) -> _Listener:
    """Calls ``on_change`` whenever the store announces that projects changed (any machine).

    The store sends those NOTIFYs itself (``tasks.projects.announce_change``), inside the transaction
    that changes a project, so no caller can forget them."""
    from fluxserve.tasks.projects import PROJECTS_CHANNEL

    return _Listener(conninfo(database_url), PROJECTS_CHANNEL, lambda _payload: on_change())


class _Listener:
    """LISTENs on one channel from a background thread and passes each payload on."""

    def __init__(self, dsn: str, channel: str, handle: Callable[[str], None]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._handle = handle
        self._stopped = threading.Event()
        self.listening = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"fluxserve-listen-{self._channel}", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    self.listening.set()
                    while not self._stopped.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self._handle(notify.payload)
            except psycopg.Error:
                self.listening.clear()
                log.warning("LISTEN %s: connection lost; retrying", self._channel, exc_info=True)
                self._stopped.wait(1.0)


class _PgEndpoint:
    """One process's endpoint: hears ``_hears``, hands on its ``_kind`` of message, sends via NOTIFY."""

    _hears: str  # the channel this side listens on
    _kind: type[TaskEvent] | type[Control]  # the messages it hands on
    _skip_own = False  # whether to drop what this endpoint sent itself (same origin)

    def __init__(self, database_url: str, on_message: Callable[[Any], None]) -> None:
        dsn = conninfo(database_url)
        self.origin = uuid.uuid4().hex[:12]
        self._on_message = on_message
        self._notifier = _Notifier(dsn)
        self._listener = _Listener(dsn, self._hears, self._received)

    def start(self) -> None:
        self._listener.start()
        self._listener.listening.wait(5.0)

    def stop(self) -> None:
        self._listener.stop()
        self._notifier.close()

    def _received(self, payload: str) -> None:
        try:
            origin, message = decode(payload)
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(message, self._kind) and not (self._skip_own and origin == self.origin):
            self._on_message(message)


class PgApiEndpoint(_PgEndpoint):
    """API process side: hears ``fluxserve_events`` (not its own), sends on ``fluxserve_control``."""

    _hears = EVENTS
    _kind = TaskEvent
    _skip_own = True

    def __init__(self, database_url: str, on_event: EventHandler) -> None:
        super().__init__(database_url, on_event)

    def send_control(self, control: Control) -> None:
        self._notifier.notify(CONTROL, encode_control(control, self.origin))

    def share_event(self, event: TaskEvent) -> None:
        self._notifier.notify(EVENTS, fit_notify(event, self.origin))


class PgWorkerEndpoint(_PgEndpoint):
    """Worker process side: sends on ``fluxserve_events``, hears ``fluxserve_control``."""

    _hears = CONTROL
    _kind = Control

    def __init__(self, database_url: str, on_control: ControlHandler) -> None:
        super().__init__(database_url, on_control)

    def send_event(self, event: TaskEvent) -> None:
        self._notifier.notify(EVENTS, fit_notify(event, self.origin))
