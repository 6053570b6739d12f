"""``wait``: follow a task to a terminal status over the live socket, or by polling Task/Detail.

The socket gives step-by-step progress without load on the API; polling is the fallback whenever
the socket cannot be opened, refuses the token or closes early. Even on the socket, Detail is
checked after a quiet spell, so a missed final frame never leaves ``wait`` hanging.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from fluxserve.client.actions import (
    IDLE,
    Notify,
    Plan,
    Sleep,
    SocketClose,
    SocketOpen,
    SocketRecv,
    SocketSend,
)
from fluxserve.client.core import ClientCore, ProgressCallback, TaskRef
from fluxserve.client.errors import TaskFailed, WaitTimeout
from fluxserve.client.live import frame_progress, parse_frame, subscribe_message
from fluxserve.client.models import TERMINAL_STATUSES, Progress, Task, parse_progress_text
from fluxserve.tasks.status import PIPELINE_ORDER

logger = logging.getLogger(__name__)

QUIET_CHECK = 5.0
"""Seconds without a socket frame after which Task/Detail is asked directly."""

SOCKET_OPEN_TIMEOUT = 5.0
MAX_POLL_INTERVAL = 2.0

_ORDER = {status.value: rank for rank, status in enumerate(PIPELINE_ORDER)}
"""A task only moves forward; a socket replaying history must not make the reported status jump back."""


@dataclass
class _Watch:
    """What ``wait`` has seen so far: reports only changes, and knows the deadline."""

    on_progress: ProgressCallback | None
    deadline: float | None
    status: str = ""
    last: Progress | None = None
    last_step: tuple[int | None, int | None] | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def report(self, event: Progress | None) -> Plan[None]:
        if event is None or event == self.last:
            return
        if not event.has_steps and _ORDER.get(event.status, len(_ORDER)) <= _ORDER.get(self.status, -1):
            return  # an older or repeated status
        if event.has_steps and self.last_step is not None and (event.step, event.total) == self.last_step:
            return  # the same step seen again (e.g. debugoutput re-read after a status change)
        if event.has_steps:
            self.last_step = (event.step, event.total)
        self.last = event
        self.status = event.status
        if self.on_progress is not None:
            yield Notify(self.on_progress, event)

    def saw_task(self, task: Task) -> Plan[None]:
        if task.status != self.status:
            yield from self.report(Progress(status=task.status))
        yield from self.report(
            parse_progress_text(task.status, task.debugoutput) if not task.is_terminal else None
        )


def wait(
    core: ClientCore,
    task: TaskRef,
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
    poll_interval: float = 0.5,
) -> Plan[Task]:
    """Return the finished task; raise TaskFailed (pexit != "0") or WaitTimeout."""
    watch = _Watch(on_progress, None if timeout is None else time.monotonic() + timeout)
    current = yield from core.detail(task)
    yield from watch.saw_task(current)
    if not current.is_terminal and core.use_socket and current.socketaccesstoken:
        current = yield from _follow_socket(core, current, watch)
    if not current.is_terminal:
        current = yield from _poll(core, current, watch, poll_interval)
    if current.failed:
        raise TaskFailed(current)
    return current


def _follow_socket(core: ClientCore, task: Task, watch: _Watch) -> Plan[Task]:
    """Follow frames until a terminal status; return the task as Detail then shows it.

    Returns a non-terminal task when the socket is unusable, so the caller falls back to polling.
    (If an exception escapes, the driver closes the socket.)
    """
    remaining = watch.remaining()
    limit = SOCKET_OPEN_TIMEOUT if remaining is None else min(SOCKET_OPEN_TIMEOUT, max(remaining, 0.1))
    opened = yield SocketOpen(core.socket_url, limit)
    if opened is not None:
        logger.debug("live socket %s unavailable (%s); polling instead", core.socket_url, opened)
        return task
    sent = yield SocketSend(subscribe_message(task.socketaccesstoken))
    if sent is None:
        task = yield from _socket_frames(core, task, watch)
    yield SocketClose()
    return task


def _socket_frames(core: ClientCore, task: Task, watch: _Watch) -> Plan[Task]:
    while True:
        if watch.expired():
            raise WaitTimeout(f"task {task.id} still {task.status} after the timeout", task)
        remaining = watch.remaining()
        received = yield SocketRecv(
            QUIET_CHECK if remaining is None else max(0.05, min(QUIET_CHECK, remaining))
        )
        if received is IDLE:
            task = yield from core.detail(task)
            yield from watch.saw_task(task)
            if task.is_terminal:
                return task
            continue
        if isinstance(received, Exception):
            logger.debug("live socket closed (%s); polling instead", received)
            return task
        frame = parse_frame(received)
        if frame is None:
            continue
        if not frame.ok:
            logger.debug("live socket refused task %s (%s); polling instead", task.id, frame.message)
            return task
        yield from watch.report(frame_progress(frame, watch.status))
        if frame.status is not None:
            yield from watch.report(Progress(status=frame.status))
        if frame.status in TERMINAL_STATUSES:
            return (yield from _settled(core, task))


def _settled(core: ClientCore, task: Task) -> Plan[Task]:
    """After the final frame, read Detail until it agrees (the frame may race the database commit)."""
    for _ in range(20):
        task = yield from core.detail(task)
        if task.is_terminal:
            return task
        yield Sleep(0.1)
    return task


def _poll(core: ClientCore, task: Task, watch: _Watch, interval: float) -> Plan[Task]:
    """Ask Detail every ``interval`` seconds while the task runs; back off while it waits in the queue."""
    base = delay = max(0.05, interval)
    while not task.is_terminal:
        remaining = watch.remaining()
        if remaining is not None and remaining <= 0:
            raise WaitTimeout(f"task {task.id} still {task.status} after the timeout", task)
        yield Sleep(delay if remaining is None else min(delay, remaining))
        task = yield from core.detail(task)
        yield from watch.saw_task(task)
        delay = min(delay * 1.5, max(MAX_POLL_INTERVAL, base)) if task.status == "task_queue" else base
    return task
