"""The event bus and the bounded thread → asyncio hand-off behind the live socket."""

from __future__ import annotations

import asyncio
import threading

from fluxserve.tasks.events import EventQueue, InProcessEventBus, TaskEvent


def _event(kind: str, step: int = 0, **flags: bool) -> TaskEvent:
    return TaskEvent("7", "tok", kind, {"stepCurrent": str(step)} if step else "", **flags)


def test_subscriber_gets_history_then_live_events_without_overlap() -> None:
    bus = InProcessEventBus()
    bus.publish(_event("task_accept"))
    bus.publish(_event("task_assign"))
    live: list[TaskEvent] = []
    past, unsubscribe = bus.subscribe("tok", live.append)
    bus.publish(_event("task_start"))
    unsubscribe()
    bus.publish(_event("task_output"))

    assert [e.type for e in past] == ["task_accept", "task_assign"]
    assert [e.type for e in live] == ["task_start"]
    assert bus.listener_count("tok") == 0


def test_history_keeps_only_the_latest_progress() -> None:
    bus = InProcessEventBus()
    bus.publish(_event("task_start"))
    for step in range(1, 6):
        bus.publish(_event("task_output", step, droppable=True))
    bus.publish(_event("task_output"))
    past, _ = bus.subscribe("tok", lambda _e: None)
    assert [(e.type, e.message) for e in past] == [
        ("task_start", ""),
        ("task_output", {"stepCurrent": "5"}),
        ("task_output", ""),
    ]


def test_a_failing_listener_does_not_fail_the_publisher_or_starve_others() -> None:
    bus = InProcessEventBus()
    seen: list[str] = []

    def broken(_event: TaskEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe("tok", broken)
    bus.subscribe("tok", lambda e: seen.append(e.type))
    bus.publish(_event("task_accept"))
    assert seen == ["task_accept"]


def test_ended_tasks_are_forgotten_after_keep_seconds() -> None:
    bus = InProcessEventBus(keep_seconds=10)
    bus.publish(TaskEvent("1", "old", "task_cancel", [], terminal=True, time=1000.0))
    bus.publish(TaskEvent("2", "new", "task_accept", "", time=1005.0))
    assert bus.subscribe("old", lambda _e: None)[0]
    bus.publish(TaskEvent("2", "new", "task_assign", "", time=1011.0))
    assert bus.subscribe("old", lambda _e: None)[0] == []


def test_queue_drops_oldest_progress_but_never_status_or_terminal_events() -> None:
    async def scenario() -> tuple[list[TaskEvent], int]:
        queue = EventQueue(asyncio.get_running_loop(), max_events=4)
        queue.push(_event("task_start"))
        for step in range(1, 101):
            queue.push(_event("task_output", step, droppable=True))
        queue.push(_event("task_output"))
        queue.push(_event("task_end"))
        queue.push(_event("task_postprocess_start"))
        queue.push(_event("task_postprocess_end", terminal=True))
        drained = []
        while (event := await queue.get(timeout=0)) is not None:
            drained.append(event)
        return drained, queue.dropped

    drained, dropped = asyncio.run(scenario())
    kinds = [e.type for e in drained if not e.droppable]
    assert kinds == [
        "task_start",
        "task_output",
        "task_end",
        "task_postprocess_start",
        "task_postprocess_end",
    ]
    progress = [e.message["stepCurrent"] for e in drained if e.droppable]
    assert progress == []  # all progress made way for the status events that came after it
    assert dropped == 100


def test_queue_keeps_the_newest_progress_when_full() -> None:
    async def scenario() -> list[str]:
        queue = EventQueue(asyncio.get_running_loop(), max_events=3)
        for step in range(1, 11):
            queue.push(_event("task_output", step, droppable=True))
        return [(await queue.get(0)).message["stepCurrent"] for _ in range(len(queue))]

    assert asyncio.run(scenario()) == ["8", "9", "10"]


def test_publishing_thread_never_blocks_on_a_consumer_that_does_not_read() -> None:
    async def scenario() -> tuple[bool, int, TaskEvent | None]:
        bus = InProcessEventBus()
        queue = EventQueue(asyncio.get_running_loop(), max_events=8)
        bus.subscribe("tok", queue.push)

        def worker() -> None:
            for step in range(1, 20001):
                bus.publish(_event("task_output", step, droppable=True))
            bus.publish(_event("task_postprocess_end", terminal=True))

        thread = threading.Thread(target=worker)
        thread.start()
        await asyncio.to_thread(thread.join, 30)  # the loop stays free; nobody drains the queue
        finished = not thread.is_alive()
        buffered = len(queue)
        last = None
        while (event := await queue.get(0)) is not None:
            last = event
        return finished, buffered, last

    finished, buffered, last = asyncio.run(scenario())
    assert finished
    assert buffered <= 8
    assert last is not None and last.terminal


def test_get_wakes_up_for_an_event_pushed_from_another_thread() -> None:
    async def scenario() -> TaskEvent | None:
        queue = EventQueue(asyncio.get_running_loop())
        timer = threading.Timer(0.05, queue.push, args=(_event("task_accept"),))
        timer.start()
        try:
            return await queue.get(timeout=30)
        finally:
            timer.join()

    event = asyncio.run(scenario())
    assert event is not None and event.type == "task_accept"


def test_get_returns_none_after_a_quiet_timeout() -> None:
    async def scenario() -> TaskEvent | None:
        return await EventQueue(asyncio.get_running_loop()).get(timeout=0.01)

    assert asyncio.run(scenario()) is None


def test_tasks_that_never_end_are_forgotten_after_idle_seconds() -> None:
    bus = InProcessEventBus(keep_seconds=10, idle_seconds=100, sweep_every=0)
    bus.publish(TaskEvent("1", "stuck", "task_start", "", time=1000.0))  # then its worker died
    bus.publish(TaskEvent("2", "other", "task_accept", "", time=1050.0))
    assert bus.subscribe("stuck", lambda _e: None)[0]
    bus.publish(TaskEvent("2", "other", "task_assign", "", time=1101.0))
    assert bus.subscribe("stuck", lambda _e: None)[0] == []
    assert [e.type for e in bus.subscribe("other", lambda _e: None)[0]] == ["task_accept", "task_assign"]
