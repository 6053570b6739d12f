"""TaskFollower: replay, live events, store fallback and ordering, with an in-process bus."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from typing import Any

import pytest

from fluxserve.api.live import TaskFollower, opening_events, record_events
from fluxserve.errors import NotFoundError
from fluxserve.tasks.events import InProcessEventBus, TaskEvent
from fluxserve.tasks.records import OutputRecord
from fluxserve.tasks.status import TaskStatus
from tests.support.live import PUBLIC, fake_services, task_record


def _output() -> OutputRecord:
    return OutputRecord("o1", 7, 0, "0.png", "image/png", 123, "", "acc", "outputs/u-7/0.png", 1.0, 1.0)


def _event(kind: str, message: Any = "", **flags: bool) -> TaskEvent:
    return TaskEvent("7", "tok", kind, message, **flags)


async def _collect(follower: TaskFollower, limit: int = 100) -> list[dict]:
    frames = []
    async for frame in follower.frames():
        if frame is not None:
            frames.append(frame)
        if len(frames) >= limit:
            break
    return frames


def test_frames_have_wiro_shape_and_replay_starts_at_task_queue() -> None:
    bus = InProcessEventBus()
    for kind in ("task_accept", "task_assign"):
        bus.publish(_event(kind))
    services = fake_services(task_record(TaskStatus.ASSIGN), bus)

    async def scenario() -> list[dict]:
        async with TaskFollower(services, "tok", poll_seconds=30) as follower:
            frames = []
            async for frame in follower.frames():
                frames.append(frame)
                if frame["type"] == "task_assign":
                    threading.Thread(target=_finish, args=(bus,)).start()
            return frames

    frames = asyncio.run(scenario())
    assert [f["type"] for f in frames] == [
        "task_queue",
        "task_accept",
        "task_assign",
        "task_start",
        "task_output",
        "task_output",
        "task_end",
        "task_postprocess_start",
        "task_postprocess_end",
    ]
    assert all(f["id"] == "7" and f["tasktoken"] == "tok" and f["result"] is True for f in frames)
    assert frames[4]["message"]["stepTotal"] == "4"
    assert frames[-1]["message"] == [{"name": "0.png"}]


def _finish(bus: InProcessEventBus) -> None:
    bus.publish(_event("task_start"))
    bus.publish(_event("task_output", {"type": "progressGenerate", "stepTotal": "4"}, droppable=True))
    bus.publish(_event("task_output"))
    bus.publish(_event("task_end"))
    bus.publish(_event("task_postprocess_start"))
    bus.publish(_event("task_postprocess_end", [{"name": "0.png"}], terminal=True))
    bus.publish(_event("task_cancel", [], terminal=True))  # never follows a terminal frame


def test_unknown_token_raises_not_found_and_leaves_no_listener() -> None:
    bus = InProcessEventBus()
    services = fake_services(task_record(), bus)

    async def scenario() -> None:
        async with TaskFollower(services, "nope"):
            pass

    with pytest.raises(NotFoundError):
        asyncio.run(scenario())
    assert bus.listener_count("nope") == 0


def test_ended_task_without_history_gets_terminal_frames_from_the_store() -> None:
    task = task_record(TaskStatus.POSTPROCESS_END, pexit="0", outputs=[_output()])
    services = fake_services(task)

    async def scenario() -> list[dict]:
        async with TaskFollower(services, "tok") as follower:
            return await _collect(follower)

    frames = asyncio.run(scenario())
    assert [f["type"] for f in frames] == [
        "task_output_full",
        "task_end",
        "task_postprocess_start",
        "task_postprocess_end",
    ]
    assert frames[-1]["message"] == [
        {"name": "0.png", "contenttype": "image/png", "size": "123", "url": f"{PUBLIC}/v1/File/acc/0.png"}
    ]


def test_failed_task_from_the_store_sends_the_error_frames_first() -> None:
    task = task_record(TaskStatus.POSTPROCESS_END, pexit="1", debugerror="out of memory")
    kinds = [(e.type, e.message) for e in record_events(task, PUBLIC)]
    assert kinds == [
        ("task_error", "out of memory"),
        ("task_output_full", ""),
        ("task_error_full", "out of memory"),
        ("task_end", ""),
        ("task_postprocess_start", ""),
        ("task_postprocess_end", []),
    ]


def test_cancel_while_queued_reaches_the_follower_through_the_store() -> None:
    """Task/Cancel of a queued task publishes nothing; the quiet-time store check finds it."""
    services = fake_services(task_record(TaskStatus.QUEUE))

    async def scenario() -> list[dict]:
        async with TaskFollower(services, "tok", poll_seconds=0.01) as follower:
            frames = []
            async for frame in follower.frames():
                if frame is None:
                    services.store.task = task_record(TaskStatus.CANCEL)
                else:
                    frames.append(frame)
            return frames

    frames = asyncio.run(scenario())
    assert [(f["type"], f["message"]) for f in frames] == [
        ("task_queue", None),
        ("task_cancel", []),
    ]  # websocket.md: no message


def test_running_task_without_history_starts_from_its_status_and_debugoutput_progress() -> None:
    progress = {"type": "progressGenerate", "stepCurrent": "3", "stepTotal": "10"}
    task = task_record(TaskStatus.START, debugoutput=json.dumps(progress))
    events = opening_events([], task, PUBLIC, live_pending=False)
    assert [(e.type, e.message) for e in events] == [
        ("task_queue", ""),
        ("task_start", ""),
        ("task_output", progress),
    ]
    # with live events already waiting, the bus is carrying the task: no guess from the store
    assert [e.type for e in opening_events([], task, PUBLIC, live_pending=True)] == ["task_queue"]


def test_a_follower_registering_before_the_workers_events_arrive_still_gets_every_status() -> None:
    """The store has stamped accept/assign/preprocessing but the bus has not carried those events
    yet (a busy machine): the opening replays them from the stamps, in order, then the current one."""
    stamped = {"createtime": 1.0, "accepttime": 2.0, "assigntime": 2.0, "preprocessstarttime": 3.0}
    task = task_record(TaskStatus.PREPROCESS_START)
    task = replace(task, times={**task.times, **stamped})
    assert [e.type for e in opening_events([], task, PUBLIC, live_pending=False)] == [
        "task_queue",
        "task_accept",
        "task_assign",
        "task_preprocess_start",
    ]


def test_statuses_never_go_backwards_and_repeated_progress_is_sent_once() -> None:
    bus = InProcessEventBus()
    services = fake_services(task_record(TaskStatus.QUEUE), bus)
    progress = {"type": "progressGenerate", "stepCurrent": "1"}

    async def scenario() -> list[tuple[str, Any]]:
        async with TaskFollower(services, "tok", poll_seconds=30) as follower:
            for event in (
                _event("task_start"),
                _event("task_accept"),  # late, behind task_start: skipped
                _event("task_output", progress, droppable=True),
                _event("task_output", dict(progress), droppable=True),  # same progress again
                _event("task_start"),
                _event("task_cancel", [], terminal=True),
            ):
                bus.publish(event)
            return [(f["type"], f["message"]) for f in await _collect(follower)]

    assert asyncio.run(scenario()) == [
        ("task_queue", None),
        ("task_start", None),
        ("task_output", progress),
        ("task_cancel", []),
    ]


def test_a_failing_store_read_while_quiet_is_retried_not_fatal() -> None:
    services = fake_services(task_record(TaskStatus.QUEUE))
    failures = iter([RuntimeError("database is locked")])
    real_by_token = services.store.by_token

    def flaky(token: str):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_by_token(token)

    async def scenario() -> list[str]:
        async with TaskFollower(services, "tok", poll_seconds=0.01) as follower:
            services.store.by_token = flaky  # the opening read worked; the first quiet-time read fails
            services.store.task = task_record(TaskStatus.CANCEL)
            return [f["type"] for f in await _collect(follower)]

    assert asyncio.run(scenario()) == ["task_queue", "task_cancel"]
    assert next(failures, None) is None  # the failing read did happen
