"""Delivery of a finished task's Detail JSON to its ``callbackUrl``.

Every delivery is signed with the task's project's ``whsec_`` secret per Standard Webhooks
(:mod:`fluxserve.net.webhooks`), with the same ``webhook-id`` on every retry.

The state of each delivery lives in the task row (pending / delivered / failed, attempts, next try),
so a restart resumes pending deliveries. One background thread delivers; the worker never waits.

A callback goes through the same guard as an input fetch (:func:`fluxserve.net.safe_fetch.send_checked`:
http(s) in any case, every resolved address checked, the connection pinned to the checked address,
no redirects, no proxy from the environment). Each delivery is isolated: whatever one raises is
recorded against that task (its debugoutput says why) and the thread goes on with the next; a URL
that can never be called is given up at once instead of retried.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fluxserve.errors import InputFetchError, UrlRefusedError
from fluxserve.logs import task_context
from fluxserve.net.safe_fetch import FetchPolicy, send_checked
from fluxserve.net.webhooks import event_id_for_task, signed_headers
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.store import TaskStore

log = logging.getLogger(__name__)

_FIELD = "callbackUrl"
_SKIP_AFTER_CRASH_S = 60.0


@dataclass(frozen=True)
class CallbackRequest:
    """What one delivery sends: built in one place (:meth:`CallbackDispatcher._build`), so a step
    that adds headers (e.g. a signature over ``body``) has one place to go."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    reason: str
    permanent: bool = False  # retrying cannot help


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
        self._policy = FetchPolicy(allow_private=allow_private, timeout_s=timeout, max_redirects=0)
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._skip_until: dict[int, float] = {}  # tasks whose bookkeeping itself failed
        self._thread = threading.Thread(target=self._run, name="fluxserve-callbacks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered_any = self.deliver_due()
            except Exception:  # never let the thread die: the next round tries again
                log.exception("callback round failed")
                delivered_any = False
            if not delivered_any:
                self._wake.wait(self._poll_interval)
                self._wake.clear()

    def deliver_due(self) -> bool:
        """One round: try every due delivery once; True when there was any."""
        now = time.time()
        try:
            due = self._store.due_callbacks(now)
        except Exception:
            log.exception("could not read pending callbacks")
            return False
        due = [task for task in due if self._skip_until.get(task.id, 0) <= now]
        for task in due:
            self._deliver_isolated(task)
        return bool(due)

    def _deliver_isolated(self, task: TaskRecord) -> None:
        """Deliver one task's callback; nothing it raises reaches the loop."""
        try:
            with task_context(task.id, task.project_id, task.tool):
                self._deliver(task)
        except Exception as exc:
            log.exception("task %s: callback delivery crashed", task.id)
            try:
                self._store.record_callback_attempt(
                    task.id,
                    delivered=False,
                    next_at=None,
                    note=f"{_FIELD}: not delivered: internal error ({type(exc).__name__}: {exc}).",
                )
            except Exception:
                log.exception("task %s: could not record the failed callback; skipping it for now", task.id)
                self._skip_until[task.id] = time.time() + _SKIP_AFTER_CRASH_S

    def _deliver(self, task: TaskRecord) -> None:
        attempt = task.callback_attempts + 1
        outcome = self._attempt(task)
        if outcome.delivered:
            log.info("task %s: callback delivered to %s (attempt %d)", task.id, task.callbackurl, attempt)
            self._store.record_callback_attempt(task.id, delivered=True, next_at=None)
            return
        if not outcome.permanent and attempt <= len(self._delays):
            log.warning(
                "task %s: callback attempt %d failed (%s); retrying", task.id, attempt, outcome.reason
            )
            next_at = time.time() + self._delays[attempt - 1]
            self._store.record_callback_attempt(task.id, delivered=False, next_at=next_at)
            return
        if outcome.permanent:
            note = f"{_FIELD}: not called: {outcome.reason}"
        else:
            note = f"{_FIELD}: not delivered after {attempt} attempts (last: {outcome.reason})."
        log.error("task %s: %s", task.id, note)
        self._store.record_callback_attempt(task.id, delivered=False, next_at=None, note=note)

    def _attempt(self, task: TaskRecord) -> _Outcome:
        request = self._build(task)
        try:
            status = send_checked(
                request.url,
                self._policy,
                method="POST",
                content=request.body,
                headers=request.headers,
                what=_FIELD,
            )
        except UrlRefusedError as exc:
            return _Outcome(False, _without_field(str(exc)), permanent=True)
        except InputFetchError as exc:
            return _Outcome(False, _without_field(str(exc)))
        return _Outcome(200 <= status < 300, f"HTTP {status}")

    def _build(self, task: TaskRecord) -> CallbackRequest:
        body = json.dumps(self._render(task), ensure_ascii=False).encode("utf-8", "backslashreplace")
        headers = {"Content-Type": "application/json"}
        project = self._store.projects.by_id(task.project_id)
        if project is not None and project.webhook_secret:  # signed per Standard Webhooks
            headers.update(signed_headers(project.webhook_secret, event_id_for_task(task.uuid), body))
        return CallbackRequest(task.callbackurl, body, headers)


def _without_field(message: str) -> str:
    return message.removeprefix(f"{_FIELD}: ")
