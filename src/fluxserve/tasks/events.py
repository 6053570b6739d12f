"""Task events travel from the worker to whoever follows the task (WebSocket, SSE) through here.

One interface, :class:`EventBus`; the embedded default is :class:`InProcessEventBus`. A
multi-machine deployment swaps in a bus over the shared database or a broker without touching
the socket code.

Publishing never waits for a subscriber: listeners run in the publishing (worker) thread and
must only hand the event over. :class:`EventQueue` is that hand-off for asyncio consumers — a
bounded buffer per subscriber that drops the oldest progress event when full (never one that is
not droppable) and wakes the consumer's event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


PREVIEW_EVENT = "task_preview"
"""Type of the droppable events carrying a latent preview (followers opt in to them)."""


@dataclass(frozen=True)
class TaskEvent:
    """One frame's worth of news about a task: a status it entered, progress, an error, its outputs."""

    task_id: str
    token: str
    type: str  # a TaskStatus value, or task_output / task_error / task_error_full / task_end
    message: Any = ""
    terminal: bool = False  # the last event this task will ever publish
    droppable: bool = False  # progress: may be skipped by a slow consumer
    time: float = field(default_factory=time.time)


Listener = Callable[[TaskEvent], None]


class EventSink(Protocol):
    """Where a worker publishes: an :class:`EventBus`, or the channel to the API processes."""

    def publish(self, event: TaskEvent) -> None: ...


class EventBus(Protocol):
    def publish(self, event: TaskEvent) -> None:
        """Deliver ``event`` to the task's listeners; must not block on slow listeners."""
        ...

    def subscribe(self, token: str, listener: Listener) -> tuple[list[TaskEvent], Callable[[], None]]:
        """Register ``listener`` for the task with this token. Returns (events so far, unsubscribe).

        The events so far and the live ones that follow neither overlap nor leave a gap.
        """
        ...


class InProcessEventBus:
    """Thread-safe bus inside one process; keeps each task's recent history for late subscribers."""

    def __init__(
        self,
        history: int = 64,
        keep_seconds: float = 3600.0,
        idle_seconds: float = 6 * 3600.0,
        sweep_every: float = 10.0,
    ) -> None:
        """History is kept ``keep_seconds`` after a task's terminal event, or ``idle_seconds`` after
        the last event of a task that never published one (e.g. failed by the lease sweeper)."""
        self._history_size = history
        self._keep_seconds = keep_seconds
        self._idle_seconds = idle_seconds
        self._sweep_every = sweep_every
        self._lock = threading.Lock()
        self._history: dict[str, deque[TaskEvent]] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._last_at: dict[str, float] = {}
        self._ended: set[str] = set()
        self._next_sweep = 0.0

    def publish(self, event: TaskEvent) -> None:
        with self._lock:
            history = self._history.setdefault(event.token, deque(maxlen=self._history_size))
            if event.droppable and history and history[-1].droppable:
                history.pop()  # keep only the latest progress in history
            history.append(event)
            self._last_at[event.token] = event.time
            if event.terminal:
                self._ended.add(event.token)
            self._forget_old(event.time)
            # Copied under the lock that subscribe() also takes: a new subscriber sees this
            # event either in its past or live, never both and never neither.
            listeners = list(self._listeners.get(event.token, ()))
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken subscriber must never fail the task
                log.exception("event listener failed for task %s", event.task_id)

    def subscribe(self, token: str, listener: Listener) -> tuple[list[TaskEvent], Callable[[], None]]:
        with self._lock:
            past = list(self._history.get(token, ()))
            self._listeners.setdefault(token, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(token, [])
                if listener in listeners:
                    listeners.remove(listener)
                if not listeners:
                    self._listeners.pop(token, None)

        return past, unsubscribe

    def listener_count(self, token: str) -> int:
        with self._lock:
            return len(self._listeners.get(token, ()))

    def _forget_old(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_every
        expired = [
            token
            for token, last in self._last_at.items()
            if now - last > (self._keep_seconds if token in self._ended else self._idle_seconds)
        ]
        for token in expired:
            self._last_at.pop(token, None)
            self._ended.discard(token)
            self._history.pop(token, None)


class EventQueue:
    """A bounded buffer from publishing threads to one asyncio consumer.

    ``push`` (any thread) never blocks: when ``max_events`` are waiting it drops the oldest
    droppable (progress) event, or the incoming one if it is droppable and nothing else can go.
    Events that are not droppable are always kept, so the buffer may exceed the bound by the
    handful of status events a task has. ``dropped`` counts what was skipped.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, max_events: int = 32) -> None:
        self._loop = loop
        self._max_events = max_events
        self._lock = threading.Lock()
        self._events: deque[TaskEvent] = deque()
        self._ready = asyncio.Event()
        self._wakeup_pending = False
        self.dropped = 0

    def push(self, event: TaskEvent) -> None:
        with self._lock:
            if len(self._events) >= self._max_events and not self._make_room(event):
                self.dropped += 1
                return
            self._events.append(event)
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            self._loop.call_soon_threadsafe(self._wake)

    def _make_room(self, incoming: TaskEvent) -> bool:
        """Drop the oldest droppable event to fit ``incoming``; False if ``incoming`` is to be dropped."""
        for index, waiting in enumerate(self._events):
            if waiting.droppable:
                del self._events[index]
                self.dropped += 1
                return True
        return not incoming.droppable

    def _wake(self) -> None:
        with self._lock:
            self._wakeup_pending = False
        self._ready.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    async def get(self, timeout: float | None = None) -> TaskEvent | None:
        """The next event, or None when ``timeout`` seconds pass without one."""
        while True:
            self._ready.clear()
            with self._lock:
                if self._events:
                    return self._events.popleft()
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                with self._lock:
                    return self._events.popleft() if self._events else None
