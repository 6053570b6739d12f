"""The embedded channel: a Unix socket in the data dir, served by the API process.

Each worker keeps one connection open; messages are length-prefixed byte strings
(``multiprocessing.connection``) holding :mod:`fluxserve.channel.codec` JSON — never pickles. The
socket file is created with mode 0600: only the service's own user can connect.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

from fluxserve.channel import Control, ControlHandler, EventHandler
from fluxserve.channel.codec import decode, encode_control, encode_event
from fluxserve.tasks.events import TaskEvent

log = logging.getLogger(__name__)

_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux


def socket_path(data_dir: Path) -> Path:
    """Where the API process listens: in the data dir, or in /tmp when that path is too long."""
    path = data_dir.resolve() / "channel.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"fluxserve-{digest}.sock"


class LocalHub:
    """API side: accepts worker connections, hands their events to ``on_event``, broadcasts controls."""

    def __init__(self, path: Path, on_event: EventHandler) -> None:
        self.path = path
        self._on_event = on_event
        self._listener: Listener | None = None
        self._links: dict[Connection, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a server that did not stop cleanly
        old_umask = os.umask(0o177)
        try:
            self._listener = Listener(str(self.path), family="AF_UNIX")
        finally:
            os.umask(old_umask)
        threading.Thread(target=self._accept, name="fluxserve-channel-accept", daemon=True).start()
        log.info("event channel listening on %s", self.path)

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            with contextlib.suppress(OSError):
                link.close()

    def connected(self) -> int:
        with self._lock:
            return len(self._links)

    def send_control(self, control: Control) -> None:
        data = encode_control(control)
        with self._lock:
            links = list(self._links.items())
        for link, lock in links:
            try:
                with lock:
                    link.send_bytes(data)
            except OSError:
                self._drop(link)

    def share_event(self, event: TaskEvent) -> None:
        """One API process per socket: nobody else to tell."""

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                link = self._listener.accept()
            except OSError:
                if not self._stopped.is_set():
                    log.exception("event channel stopped accepting")
                return
            with self._lock:
                if self._stopped.is_set():  # stop() ran between accept() and here: it missed this link
                    link.close()
                    return
                self._links[link] = threading.Lock()
            reader = threading.Thread(target=self._read, args=(link,), name="fluxserve-channel-read")
            reader.daemon = True
            reader.start()

    def _read(self, link: Connection) -> None:
        while True:
            try:
                data = link.recv_bytes()
            except (EOFError, OSError, TypeError):  # TypeError: closed by stop() meanwhile
                self._drop(link)
                return
            try:
                _origin, message = decode(data)
            except (ValueError, KeyError, TypeError):
                log.warning("event channel: ignoring a malformed message")
                continue
            if isinstance(message, TaskEvent):
                self._on_event(message)

    def _drop(self, link: Connection) -> None:
        with self._lock:
            self._links.pop(link, None)
        with contextlib.suppress(OSError):
            link.close()


class LocalLink:
    """Worker side: one connection to the hub, re-established when it breaks.

    Events sent while disconnected are dropped (followers read the store after a quiet second).
    """

    def __init__(self, path: Path, on_control: ControlHandler, retry_seconds: float = 0.5) -> None:
        self.path = path
        self._on_control = on_control
        self._retry_seconds = retry_seconds
        self._link: Connection | None = None
        self._send_lock = threading.Lock()
        self._connected = threading.Event()
        self._stopped = threading.Event()

    def start(self) -> None:
        self._try_connect()
        threading.Thread(target=self._run, name="fluxserve-channel-link", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        link = self._link
        if link is not None:
            with contextlib.suppress(OSError):
                link.close()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def send_event(self, event: TaskEvent) -> None:
        link = self._link
        if link is None:
            return
        try:
            with self._send_lock:
                link.send_bytes(encode_event(event))
        except OSError:
            self._disconnected(link)

    def _try_connect(self) -> bool:
        try:
            self._link = Client(str(self.path), family="AF_UNIX")
        except OSError:
            return False
        self._connected.set()
        log.info("event channel connected to %s", self.path)
        return True

    def _run(self) -> None:
        while not self._stopped.is_set():
            link = self._link
            if link is None:
                if not self._try_connect():
                    self._stopped.wait(self._retry_seconds)
                continue
            try:
                data = link.recv_bytes()
            except (EOFError, OSError, TypeError):  # TypeError: closed by stop() meanwhile
                self._disconnected(link)
                continue
            try:
                _origin, message = decode(data)
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(message, Control):
                self._on_control(message)

    def _disconnected(self, link: Connection) -> None:
        if self._link is link:
            self._link = None
            self._connected.clear()
            if not self._stopped.is_set():
                log.warning("event channel to %s lost; reconnecting", self.path)
        with contextlib.suppress(OSError):
            link.close()
