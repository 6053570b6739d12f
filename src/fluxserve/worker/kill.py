"""Kill requests as the worker sees them: pushed over the event channel, the store as a fallback.

The step callback asks :meth:`KillWatch.checker`'s function on every denoising step; that is a set
lookup. The store's kill flag (the record that survives restarts and reaches a worker whose
channel is down) is read at most every ``fallback_seconds`` per task.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fluxserve.tasks.store import TaskStore

_REMEMBERED = 4096  # kill requests kept for tasks this worker may not even run


class KillWatch:
    def __init__(self, store: TaskStore, fallback_seconds: float = 1.0) -> None:
        self._store = store
        self._fallback_seconds = fallback_seconds
        self._requested: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()

    def request(self, task_id: int) -> None:
        """A kill request arrived over the channel (it may be for another worker's task)."""
        with self._lock:
            self._requested[task_id] = None
            while len(self._requested) > _REMEMBERED:
                self._requested.popitem(last=False)

    def forget(self, task_id: int) -> None:
        with self._lock:
            self._requested.pop(task_id, None)

    def checker(self, task_id: int) -> Callable[[], bool]:
        """``is_killed()`` for one task run."""
        next_read = time.monotonic() + self._fallback_seconds

        def is_killed() -> bool:
            nonlocal next_read
            if task_id in self._requested:
                return True
            now = time.monotonic()
            if now < next_read:
                return False
            next_read = now + self._fallback_seconds
            if self._store.kill_requested(task_id):
                self.request(task_id)
                return True
            return False

        return is_killed
