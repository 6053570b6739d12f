"""The sweeper: running tasks whose worker died go back to the queue (or fail after N attempts)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fluxserve.tasks.store import TaskStore
from fluxserve.tasks.workers import WorkerDirectory
from fluxserve.worker.lease import is_dead_local_worker

log = logging.getLogger(__name__)


def expire_dead_local_workers(store: TaskStore) -> int:
    """Expire at once the leases held by processes on this host that no longer exist."""
    expired = 0
    for worker_id in store.running_worker_ids():
        if worker_id and is_dead_local_worker(worker_id):
            expired += store.expire_leases_of(worker_id)
    return expired


class Sweeper:
    """Every ``interval`` seconds: recover tasks with lapsed leases; ``on_ended`` hears of failures."""

    def __init__(
        self,
        store: TaskStore,
        max_attempts: int,
        interval: float,
        on_ended: Callable[[int], None] = lambda task_id: None,
        directory: WorkerDirectory | None = None,
        forget_lost_after: float = 24 * 3600.0,
    ) -> None:
        self._store = store
        self._max_attempts = max_attempts
        self._interval = interval
        self._on_ended = on_ended
        self._directory = directory
        self._forget_lost_after = forget_lost_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fluxserve-sweeper", daemon=True)

    def sweep_once(self) -> None:
        expire_dead_local_workers(self._store)
        _requeued, ended = self._store.recover_expired(self._max_attempts)
        for task_id in ended:
            self._on_ended(task_id)
        if self._directory is not None:
            self._directory.forget_lost(self._forget_lost_after)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                self.sweep_once()
            except Exception:
                log.exception("sweep failed; retrying")
            if self._stop.wait(self._interval):
                return
