"""Worker identity and lease heartbeats: a running task's lease is renewed while its worker lives."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from fluxserve.tasks.store import TaskStore

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """``host:pid:random`` — the host and pid let a restarted process spot its dead predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def local_worker_prefix(pid: int) -> str:
    """The start of every worker id a process ``pid`` on this host gives itself."""
    return f"{socket.gethostname()}:{pid}:"


def is_dead_local_worker(worker_id: str) -> bool:
    """True when ``worker_id`` names a process on this host that no longer exists."""
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaseKeeper:
    """Renews the leases of the tasks this worker is running, from one background thread."""

    def __init__(self, store: TaskStore, worker_id: str, lease_seconds: float) -> None:
        self._store = store
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._active: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fluxserve-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def hold(self, task_id: int) -> None:
        with self._lock:
            self._active.add(task_id)

    def release(self, task_id: int) -> None:
        with self._lock:
            self._active.discard(task_id)

    def _run(self) -> None:
        interval = max(0.2, self._lease_seconds / 3)
        while not self._stop.wait(interval):
            with self._lock:
                active = list(self._active)
            for task_id in active:
                try:
                    self._store.renew_lease(task_id, self._worker_id, self._lease_seconds)
                except Exception:  # the database may be briefly unavailable; try again next tick
                    log.exception("could not renew the lease of task %s", task_id)
