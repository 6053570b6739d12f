"""Following one task live: the frames the WebSocket (``/v1``) and SSE routes send, in order.

A :class:`TaskFollower` subscribes to the event bus, replays what the task already went through,
then passes live events on until the terminal one. The store is the fallback for anything the
bus did not carry: a task cancelled while queued, failed by the sweeper after its worker died,
ended before the server restarted, or whose channel message was lost. When no event arrives for
``poll_seconds`` (FLUXSERVE_LIVE_POLL_SECONDS) the follower reads the task's row and synthesizes
what is missing.

Frames never go backwards: a status earlier than one already sent is skipped, each non-progress
frame type is sent once, and nothing follows the terminal frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from starlette.concurrency import run_in_threadpool

from fluxserve.api.services import ApiServices
from fluxserve.errors import NotFoundError
from fluxserve.tasks.ends import end_events
from fluxserve.tasks.events import PREVIEW_EVENT, EventQueue, TaskEvent
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.status import PIPELINE_ORDER, TIME_FIELD, TaskStatus

log = logging.getLogger(__name__)

MAX_BUFFERED_EVENTS = 32
"""Per-follower buffer; beyond it progress events are dropped (never status or terminal ones)."""

_RANK = {status.value: rank for rank, status in enumerate(PIPELINE_ORDER)}


_BARE_TYPES = frozenset(
    {status.value for status in PIPELINE_ORDER if status is not TaskStatus.POSTPROCESS_END}
    | {"task_end", "task_postprocess_start"}
)
"""Lifecycle frames: websocket.md shows them without a message, so theirs is ``null``."""


def frame(event: TaskEvent) -> dict[str, Any]:
    """The wire frame for one event (Wiro's socket message shape)."""
    bare = event.type in _BARE_TYPES and (event.message == "" or event.message is None)
    return {
        "type": event.type,
        "id": event.task_id,
        "tasktoken": event.token,
        "message": None if bare else event.message,
        "result": True,
    }


def acknowledgement(task_id: str, token: str) -> dict[str, Any]:
    """The first frame after a good registration: the ``task_info`` message, answered."""
    return {"type": "task_info", "id": task_id, "tasktoken": token, "message": None, "result": True}


def error_frame(token: str, message: str, code: int = 0) -> dict[str, Any]:
    """The frame sent before closing when a registration cannot be served (unknown token, bad JSON)."""
    return {
        "type": "error",
        "id": "",
        "tasktoken": token,
        "message": message,
        "errors": [{"code": code, "message": message}],
        "result": False,
    }


def progress_of(debugoutput: str) -> dict[str, str] | None:
    """The progressGenerate object a running task keeps in debugoutput, if that is what it holds."""
    try:
        value = json.loads(debugoutput)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("type") == "progressGenerate" else None


def preview_message(data_url: str, progress: dict[str, str]) -> dict[str, str] | None:
    """A task_preview message rebuilt from the ``data:`` URL kept in debugoutput."""
    head, _, data = data_url.partition(";base64,")
    if not head.startswith("data:") or not data:
        return None
    return {
        "type": "previewGenerate",
        "step": str(progress.get("step", "")),
        "total": str(progress.get("total", "")),
        "contenttype": head[len("data:") :],
        "image": data,
    }


def record_events(task: TaskRecord, public_url: str) -> list[TaskEvent]:
    """What the store knows about a task, as the last events a follower should have seen.

    A running task's statuses after task_queue that the store has stamped a time for come first:
    a follower that registers while the worker's events for them are still on their way (a busy
    machine) gets them too, instead of skipping to the current status."""

    def event(kind: str, message: Any = "", **flags: bool) -> TaskEvent:
        return TaskEvent(task.taskid, task.token, kind, message, **flags)

    if task.status.is_terminal():
        return end_events(task, public_url)  # the very frames a worker or the API published
    passed = PIPELINE_ORDER[1 : PIPELINE_ORDER.index(task.status)] if task.status in PIPELINE_ORDER else ()
    events = [event(status.value) for status in passed if task.times.get(TIME_FIELD[status])]
    events.append(event(task.status.value))
    progress = progress_of(task.debugoutput) if task.status is TaskStatus.START else None
    if progress is not None:
        preview = preview_message(progress.pop("preview", ""), progress)
        events.append(event("task_output", progress, droppable=True))
        if preview is not None:
            events.append(event(PREVIEW_EVENT, preview, droppable=True))
    return events


def opening_events(
    past: list[TaskEvent], task: TaskRecord, public_url: str, live_pending: bool
) -> list[TaskEvent]:
    """What a follower registering now has missed: the bus's history, completed from the store.

    Every task starts in task_queue, which the API (not the worker) sets, so a replay starts
    there. The store's current state is added when the task has ended, or when neither the
    history nor pending live events show where it is (e.g. its worker runs in another process).
    """
    events: list[TaskEvent] = []
    if past or not task.status.is_terminal():
        events.append(
            TaskEvent(task.taskid, task.token, TaskStatus.QUEUE.value, "", time=task.times["createtime"])
        )
    events += past
    if task.status.is_terminal() or not (past or live_pending):
        events += record_events(task, public_url)
    return events


class _Sequencer:
    """Decides which events become frames: no repeats, no going back, nothing after the end."""

    def __init__(self) -> None:
        self.ended = False
        self._sent: set[str] = set()
        self._rank = -1
        self._last_progress: dict[str, Any] = {}  # per droppable type (progress, preview)

    def admit(self, event: TaskEvent) -> bool:
        if self.ended:
            return False
        if event.droppable:
            if event.message == self._last_progress.get(event.type):
                return False
            self._last_progress[event.type] = event.message
            return True
        if event.type in self._sent:
            return False
        rank = _RANK.get(event.type)
        if rank is not None:
            if rank < self._rank:
                return False
            self._rank = rank
        self._sent.add(event.type)
        self.ended = event.terminal
        return True


class TaskFollower:
    """One subscriber following the task with socket access token ``token``.

    Use as ``async with TaskFollower(...) as follower: async for frame in follower.frames(): …``.
    Entering raises NotFoundError for an unknown token. ``frames()`` yields None after each quiet
    spell of ``poll_seconds`` (a chance to send a keep-alive) and ends after the terminal frame.
    """

    def __init__(
        self,
        services: ApiServices,
        token: str,
        poll_seconds: float | None = None,
        max_buffered: int = MAX_BUFFERED_EVENTS,
        previews: bool = False,
    ) -> None:
        """``previews``: pass task_preview frames on (off for Wiro clients unless they ask)."""
        self._services = services
        self._previews = previews
        self.token = token
        self._poll_seconds = services.live_poll_seconds if poll_seconds is None else poll_seconds
        self._max_buffered = max_buffered
        self._sequencer = _Sequencer()
        self._opening: list[TaskEvent] = []
        self._queue: EventQueue | None = None
        self._unsubscribe = _nothing
        self.task_id = ""

    @property
    def dropped(self) -> int:
        """Progress events this follower skipped because its consumer fell behind."""
        return self._queue.dropped if self._queue else 0

    async def __aenter__(self) -> TaskFollower:
        self._queue = EventQueue(asyncio.get_running_loop(), self._max_buffered)
        past, self._unsubscribe = self._services.events.subscribe(self.token, self._queue.push)
        try:
            task = await run_in_threadpool(self._services.store.by_token, self.token)
        except BaseException:
            self._unsubscribe()
            raise
        if task is None:
            self._unsubscribe()
            raise NotFoundError(f"No task has the socket access token '{self.token}'.")
        self.task_id = task.taskid
        self._opening = opening_events(
            past, task, self._services.public_url, live_pending=len(self._queue) > 0
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._unsubscribe()
        if self.dropped:
            log.info("follower of task token %s…: %d progress events dropped", self.token[:6], self.dropped)

    async def frames(self) -> AsyncIterator[dict[str, Any] | None]:
        assert self._queue is not None, "use TaskFollower as an async context manager"
        for event in self._opening:
            if self._wanted(event) and self._sequencer.admit(event):
                yield frame(event)
        while not self._sequencer.ended:
            event = await self._queue.get(self._poll_seconds)
            if event is None:
                candidates = await self._from_store()
                yield None
            else:
                candidates = [event]
            for candidate in candidates:
                if self._wanted(candidate) and self._sequencer.admit(candidate):
                    yield frame(candidate)

    def _wanted(self, event: TaskEvent) -> bool:
        return self._previews or event.type != PREVIEW_EVENT

    async def _from_store(self) -> list[TaskEvent]:
        try:
            task = await run_in_threadpool(self._services.store.by_token, self.token)
        except Exception:  # e.g. the database is briefly unavailable: try again after the next quiet spell
            log.warning("live follower could not read task token %s…", self.token[:6], exc_info=True)
            return []
        return record_events(task, self._services.public_url) if task is not None else []


def _nothing() -> None:
    return None
