"""Delivery of a finished task's Detail JSON to its ``callbackUrl``.

The state of each delivery lives in the task row (pending / delivered / failed, attempts, next try),
so a restart resumes pending deliveries. One background thread delivers; the worker never waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from fluxserve.errors import InputFetchError
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.store import TaskStore

log = logging.getLogger(__name__)


class CallbackDispatcher:
    """POSTs ``render(task)`` to each ended task's callback URL, retrying with growing delays.

    ``delays[i]`` is the wait before retry i+1, so ``len(delays) + 1`` attempts in all
    (default 5, 10, 20, 40, 60 s: six attempts over about two minutes).
    """

    def __init__(
        self,
        store: TaskStore,
        render: Callable[[TaskRecord], dict[str, Any]],
        delays: Sequence[float],
        timeout: float = 10.0,
        allow_private: bool = False,
        poll_interval: float = 0.25,
    ) -> None:
        self._store = store
        self._render = render
        self._delays = list(delays)
        self._timeout = timeout
        self._allow_private = allow_private
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fluxserve-callbacks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    due = self._store.due_callbacks(time.time())
                except Exception:
                    log.exception("could not read pending callbacks")
                    due = []
                for task in due:
                    self._deliver(client, task)
                if not due:
                    self._wake.wait(self._poll_interval)
                    self._wake.clear()

    def _deliver(self, client: httpx.Client, task: TaskRecord) -> None:
        attempt = task.callback_attempts + 1
        try:
            _check_destination(task.callbackurl, self._allow_private)
            response = client.post(task.callbackurl, json=self._render(task))
            delivered = 200 <= response.status_code < 300
            reason = f"HTTP {response.status_code}"
        except InputFetchError as exc:
            log.warning("task %s: callback refused: %s", task.id, exc)
            self._store.record_callback_attempt(task.id, delivered=False, next_at=None)
            return
        except httpx.HTTPError as exc:
            delivered, reason = False, f"{type(exc).__name__}: {exc}"
        if delivered:
            log.info("task %s: callback delivered to %s (attempt %d)", task.id, task.callbackurl, attempt)
            self._store.record_callback_attempt(task.id, delivered=True, next_at=None)
            return
        if attempt <= len(self._delays):
            next_at = time.time() + self._delays[attempt - 1]
            log.warning("task %s: callback attempt %d failed (%s); retrying", task.id, attempt, reason)
        else:
            next_at = None
            log.error("task %s: callback failed after %d attempts (%s); giving up", task.id, attempt, reason)
        self._store.record_callback_attempt(task.id, delivered=False, next_at=next_at)


def _check_destination(url: str, allow_private: bool) -> None:
    """Refuse callbacks to private/loopback addresses unless allowed (the same guard as input URLs)."""
    from fluxserve.net.safe_fetch import check_url_allowed

    check_url_allowed(url, allow_private)
