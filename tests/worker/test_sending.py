"""EventSender: events published by the worker's threads go out in order from the sender thread."""

from __future__ import annotations

import threading

from fluxserve.tasks.events import TaskEvent
from fluxserve.worker.sending import EventSender


def _event(index: int) -> TaskEvent:
    return TaskEvent(str(index), "token", "task_output", {"step": str(index)})


def test_events_go_out_in_order_from_another_thread_and_stop_sends_what_is_queued() -> None:
    sent: list[tuple[str, str]] = []
    release = threading.Event()

    def send(event: TaskEvent) -> None:
        release.wait(10)  # a slow send: publish must not wait for it
        sent.append((event.task_id, threading.current_thread().name))

    sender = EventSender(send)
    sender.start()
    for index in range(50):
        sender.publish(_event(index))
    assert sent == []  # every publish returned while the first send was still blocked
    release.set()
    sender.stop()
    assert [task_id for task_id, _ in sent] == [str(index) for index in range(50)]
    assert {thread for _, thread in sent} == {"fluxserve-event-sender"}


def test_a_failing_send_does_not_stop_the_next_ones() -> None:
    sent: list[str] = []

    def send(event: TaskEvent) -> None:
        if event.task_id == "1":
            raise OSError("channel gone")
        sent.append(event.task_id)

    sender = EventSender(send)
    sender.start()
    for index in range(3):
        sender.publish(_event(index))
    sender.stop()
    assert sent == ["0", "2"]


def test_before_start_and_after_stop_publish_sends_directly() -> None:
    sent: list[str] = []
    sender = EventSender(lambda event: sent.append(event.task_id))
    sender.publish(_event(1))
    sender.start()
    sender.stop()
    sender.publish(_event(2))
    assert sent == ["1", "2"]
