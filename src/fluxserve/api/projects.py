"""A short-lived cache of projects by API key, so authenticating a poll costs no database read.

An entry is trusted for ``max_age`` seconds, then read again. A change made with ``fluxserve
project`` takes effect at once: on PostgreSQL the store NOTIFYs every API process, on any machine,
which calls :meth:`ProjectCache.clear`; on SQLite (one machine) the command touches a marker file
(``tasks.projects.changes_marker``) and a moved marker empties the cache. ``max_age`` only bounds
what a lost notification could cost. Unknown keys are not cached (a flood of made-up keys cannot fill memory).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from fluxserve.tasks.records import Project
from fluxserve.tasks.store import TaskStore

_MAX_ENTRIES = 10_000


class ProjectCache:
    def __init__(self, store: TaskStore, max_age: float = 5.0, marker: Path | None = None) -> None:
        self._store = store
        self._max_age = max_age
        self._marker = None if marker is None else os.fspath(marker)  # os.stat on a str: cheapest
        self._marker_seen = self._marker_stamp()
        self._entries: dict[str, tuple[float, Project]] = {}
        self._lock = threading.Lock()

    def _marker_stamp(self) -> int:
        if self._marker is None:
            return 0
        try:
            return os.stat(self._marker).st_mtime_ns
        except OSError:
            return 0

    def cached(self, api_key: str) -> Project | None:
        """The project if a fresh entry is held (a stat, no query: safe on the event loop), else None."""
        stamp = self._marker_stamp()
        if stamp != self._marker_seen:  # a project was created, changed, rotated or deleted
            with self._lock:
                self._entries.clear()
                self._marker_seen = stamp
        entry = self._entries.get(api_key)
        if entry is not None and time.monotonic() - entry[0] < self._max_age:
            return entry[1]
        return None

    def clear(self) -> None:
        """Forget every cached key (projects changed somewhere)."""
        with self._lock:
            self._entries.clear()

    def project_by_key(self, api_key: str) -> Project | None:
        project = self.cached(api_key)
        if project is not None:
            return project
        project = self._store.project_by_key(api_key)
        with self._lock:
            if project is None:
                self._entries.pop(api_key, None)
            else:
                if len(self._entries) >= _MAX_ENTRIES:
                    self._entries.clear()
                self._entries[api_key] = (time.monotonic(), project)
        return project
