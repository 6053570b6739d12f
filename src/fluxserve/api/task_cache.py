"""Recently read tasks, kept in the API process and dropped the moment an event says they changed.

Every change a worker makes to a task (a status, progress, a preview, its end) is followed by an
event on the channel, and every change the API makes (Cancel, Kill of a queued task, the sweeper)
is published too; the event bus calls :meth:`TaskCache.invalidate` for each. So a client polling
Detail is answered from memory until its task actually changes. Entries also age out — a running
task's after ``live_seconds`` (the same bound as the live followers' store fallback, in case an
event was lost) or an ended one whose callback is still pending, a settled task's after
``ended_seconds`` — and a read that raced with an event is not kept.
"""

from __future__ import annotations

import itertools
import threading
import time

from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.store import TaskStore

_MAX_ENTRIES = 50_000


def settled(task: TaskRecord) -> bool:
    """Ended, and its callback no longer pending. While a callback is due, the process delivering it
    (this API, or a ``fluxserve worker`` elsewhere) writes its attempts and any refusal or give-up
    into ``debugoutput`` without publishing an event, so such a task is re-read like a running one."""
    return task.status.is_terminal() and task.callback_state != "pending"


class TaskCache:
    def __init__(self, store: TaskStore, live_seconds: float = 1.0, ended_seconds: float = 60.0) -> None:
        self._store = store
        self._live_seconds = live_seconds
        self._ended_seconds = ended_seconds
        self._by_id: dict[int, tuple[float, TaskRecord]] = {}
        self._id_of_token: dict[str, int] = {}
        self._changed_at: dict[str, int] = {}  # token -> generation of its last event
        self._generation = itertools.count(1)
        self._now_generation = 0
        self._lock = threading.Lock()

    def cached(self, project_id: int, taskid: str = "", token: str = "") -> TaskRecord | None:
        """A fresh copy of the project's task by id or socket token, or None (no I/O)."""
        task_id = int(taskid) if taskid.isdigit() and len(taskid) <= 10 else self._id_of_token.get(token)
        entry = self._by_id.get(task_id) if task_id is not None else None
        if entry is None:
            return None
        read_at, task = entry
        limit = self._ended_seconds if settled(task) else self._live_seconds
        if task.project_id != project_id or time.monotonic() - read_at > limit:
            return None
        if (token and task.token != token) or (taskid and task.taskid != taskid):
            return None
        return task

    def find(self, project_id: int, *, taskid: str = "", token: str = "", task_uuid: str = "") -> TaskRecord:
        """``TaskStore.find`` that keeps what it read (unless an event for it arrived meanwhile)."""
        with self._lock:
            started = self._now_generation
        task = self._store.find(project_id, taskid=taskid, token=token, task_uuid=task_uuid)
        with self._lock:
            if self._changed_at.get(task.token, 0) <= started:
                if len(self._by_id) >= _MAX_ENTRIES:
                    self._by_id.clear()
                    self._id_of_token.clear()
                self._by_id[task.id] = (time.monotonic(), task)
                self._id_of_token[task.token] = task.id
        return task

    def invalidate(self, token: str) -> None:
        """The task with this socket token changed (called for every published event)."""
        with self._lock:
            self._now_generation = next(self._generation)
            self._changed_at[token] = self._now_generation
            if len(self._changed_at) > _MAX_ENTRIES:
                self._changed_at = {token: self._now_generation}
            task_id = self._id_of_token.pop(token, None)
            if task_id is not None:
                self._by_id.pop(task_id, None)
