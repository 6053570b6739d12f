"""Task events travel from the worker to whoever follows the task (WebSocket, SSE) through here.

One interface, :class:`EventBus`; the embedded default is :class:`InProcessEventBus`. A
multi-machine deployment swaps in a bus over the shared database or a broker without touching
the socket code.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class EventBus(Protocol):
    def publish(self, event: TaskEvent) -> None: ...

    def subscribe(self, token: str, listener: Listener) -> tuple[list[TaskEvent], Callable[[], None]]:
        """Register ``listener`` for the task with this token. Returns (events so far, unsubscribe)."""
        ...


class InProcessEventBus:
    """Thread-safe bus inside one process; keeps each task's recent history for late subscribers."""

    def __init__(self, history: int = 64, keep_seconds: float = 3600.0) -> None:
        self._history_size = history
        self._keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._history: dict[str, deque[TaskEvent]] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._ended_at: dict[str, float] = {}

    def publish(self, event: TaskEvent) -> None:
        with self._lock:
            history = self._history.setdefault(event.token, deque(maxlen=self._history_size))
            if event.droppable and history and history[-1].droppable:
                history.pop()  # keep only the latest progress in history
            history.append(event)
            if event.terminal:
                self._ended_at[event.token] = event.time
            listeners = list(self._listeners.get(event.token, ()))
            self._forget_old(event.time)
        for listener in listeners:
            listener(event)

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

    def _forget_old(self, now: float) -> None:
        expired = [token for token, ended in self._ended_at.items() if now - ended > self._keep_seconds]
        for token in expired:
            self._ended_at.pop(token, None)
            self._history.pop(token, None)
