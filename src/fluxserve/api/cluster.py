"""What the API knows about the workers: who is live and which tools they claim.

It answers three questions: may Run accept a tool (yes if this process's own configuration can
run it, or a live worker claims it — so an API box needs neither weights nor partner keys), why
is a queued task still waiting (shown in Detail's ``debugoutput``), and how many workers are live
(``/healthz``). The directory is read at most once per ``cache_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fluxserve.catalog import Catalog
from fluxserve.errors import NotFoundError
from fluxserve.tasks.workers import WorkerDirectory, WorkerRow


class ClusterView:
    def __init__(
        self,
        directory: WorkerDirectory,
        catalog: Catalog,
        local_reason: Callable[[str], str | None],
        cache_seconds: float = 1.0,
    ) -> None:
        self._directory = directory
        self._catalog = catalog
        self._local_reason = local_reason
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[WorkerRow]] = (0.0, [])

    def live(self) -> list[WorkerRow]:
        now = time.monotonic()
        with self._lock:
            at, rows = self._cached
            if now - at < self._cache_seconds:
                return rows
        rows = self._directory.live()
        with self._lock:
            self._cached = (now, rows)
        return rows

    def availability(self, engine: str) -> str | None:
        """Why Run must refuse tools of ``engine``: only when neither this process nor a live worker can."""
        reason = self._local_reason(engine)
        if reason is None:
            return None
        for row in self.live():
            if any(self._engine_of(tool) == engine for tool in row.info.tools):
                return None
        return reason

    def waiting_note(self, tool: str) -> str | None:
        """Why a queued task of ``tool`` is not being taken, or None when a live worker claims it."""
        live = [row for row in self.live() if not row.draining]
        if any(tool in row.info.tools for row in live):
            return None
        if not live:
            return (
                f"Waiting for a worker that can run {tool}: no worker is running "
                "(start one with `fluxserve worker`)."
            )
        reasons = "; ".join(
            f"{row.info.id}: {row.info.unavailable.get(tool, 'does not claim it')}" for row in live[:5]
        )
        count = f"{len(live)} live worker" + ("s" if len(live) > 1 else "")
        return f"Waiting for a worker that can run {tool}: none of the {count} can ({reasons})."

    def counts(self) -> dict[str, int]:
        now = time.time()
        counts = {"live": 0, "draining": 0, "lost": 0}
        for row in self._directory.all():
            counts[row.state(now)] += 1
        return counts

    def _engine_of(self, tool: str) -> str | None:
        try:
            return self._catalog.get(tool).engine
        except NotFoundError:
            return None
