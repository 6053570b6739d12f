"""Kill requests as the worker sees them: pushed over the event channel, the store as a fallback.

The step callback asks the task's :class:`KillCheck` on every denoising step; that is a set
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


class KillCheck:
    """``is_killed()`` for one task run; ``arrived_after_step`` is the last step the task had
    finished when a kill request reached this worker over the channel (None: not over the channel)."""

    def __init__(self, watch: KillWatch, task_id: int) -> None:
        self._watch = watch
        self._task_id = task_id
        self._next_read = time.monotonic() + watch.fallback_seconds
        self.current_step: Callable[[], int] = lambda: 0
        self.arrived_after_step: int | None = None

    def __call__(self) -> bool:
        if self._watch.requested(self._task_id):
            return True
        now = time.monotonic()
        if now < self._next_read:
            return False
        self._next_read = now + self._watch.fallback_seconds
        if self._watch.store.kill_requested(self._task_id):
            self._watch.request(self._task_id, from_channel=False)
            return True
        return False


class KillWatch:
    def __init__(self, store: TaskStore, fallback_seconds: float = 1.0) -> None:
        self.store = store
        self.fallback_seconds = fallback_seconds
        self._requested: OrderedDict[int, None] = OrderedDict()
        self._running: dict[int, KillCheck] = {}
        self._lock = threading.Lock()

    def request(self, task_id: int, from_channel: bool = True) -> None:
        """A kill request arrived (it may be for another worker's task)."""
        with self._lock:
            self._requested[task_id] = None
            while len(self._requested) > _REMEMBERED:
                self._requested.popitem(last=False)
            check = self._running.get(task_id)
        if check is not None and from_channel and check.arrived_after_step is None:
            check.arrived_after_step = check.current_step()

    def requested(self, task_id: int) -> bool:
        return task_id in self._requested

    def checker(self, task_id: int) -> KillCheck:
        check = KillCheck(self, task_id)
        with self._lock:
            self._running[task_id] = check
        return check

    def forget(self, task_id: int) -> None:
        with self._lock:
            self._requested.pop(task_id, None)
            self._running.pop(task_id, None)
