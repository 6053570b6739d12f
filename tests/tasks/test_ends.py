"""end_events/publish_end: the frames that end a task, the same whoever ended it (pure, no server)."""

from __future__ import annotations

from fluxserve.tasks.ends import end_events, publish_end
from fluxserve.tasks.events import InProcessEventBus
from fluxserve.tasks.records import OutputRecord, TaskRecord
from fluxserve.tasks.status import TaskStatus

PUBLIC = "http://127.0.0.1:9"


def output(i: int) -> OutputRecord:
    return OutputRecord(
        id=f"o{i}", task_id=3, position=i, name=f"{i}.png", contenttype="image/png", size=10 + i,
        parentid="p", accesskey=f"K{i}", storage_key=f"u/{i}.png", addedtime=1.0, modifiedtime=1.0,
    )  # fmt: skip


def task(status: TaskStatus, pexit: str = "0", debugerror: str = "", outputs: int = 0) -> TaskRecord:
    records = [output(i) for i in range(outputs)]
    return TaskRecord(
        id=3, uuid="u", token="tok", project_id=1, tool="t", inputs={}, parameters={}, files={},
        status=status, debugoutput="", debugerror=debugerror, pexit=pexit, callbackurl="", times={},
        attempts=1, kill_requested=False, worker_id="", lease_expires_at=0.0, callback_state="",
        callback_attempts=0, outputs=records,
    )  # fmt: skip


def kinds(events) -> list[tuple[str, object, bool]]:
    return [(e.type, e.message, e.terminal) for e in events]


def test_success_ends_with_the_outputs() -> None:
    assert kinds(end_events(task(TaskStatus.POSTPROCESS_END, outputs=2), PUBLIC)) == [
        ("task_output_full", "", False),  # the whole output log (debugoutput), once
        ("task_end", "", False),
        ("task_postprocess_start", "", False),
        (
            "task_postprocess_end",
            [
                {
                    "name": "0.png",
                    "contenttype": "image/png",
                    "size": "10",
                    "url": f"{PUBLIC}/v1/File/K0/0.png",
                },
                {
                    "name": "1.png",
                    "contenttype": "image/png",
                    "size": "11",
                    "url": f"{PUBLIC}/v1/File/K1/1.png",
                },
            ],
            True,
        ),
    ]


def test_failure_sends_the_error_twice_then_an_empty_end() -> None:
    failed = task(TaskStatus.POSTPROCESS_END, pexit="1", debugerror="inputImageUrl: HTTP 404")
    assert kinds(end_events(failed, PUBLIC)) == [
        ("task_error", "inputImageUrl: HTTP 404", False),
        ("task_output_full", "", False),
        ("task_error_full", "inputImageUrl: HTTP 404", False),
        ("task_end", "", False),
        ("task_postprocess_start", "", False),
        ("task_postprocess_end", [], True),
    ]


def test_cancel_is_one_terminal_frame() -> None:
    assert kinds(end_events(task(TaskStatus.CANCEL), PUBLIC)) == [("task_cancel", [], True)]


def test_a_task_that_has_not_ended_has_no_end_events() -> None:
    for status in (TaskStatus.QUEUE, TaskStatus.START, TaskStatus.OUTPUT):
        assert end_events(task(status), PUBLIC) == []


def test_publish_end_reaches_followers_in_order() -> None:
    bus = InProcessEventBus()
    seen = []
    bus.subscribe("tok", seen.append)
    publish_end(bus, task(TaskStatus.POSTPROCESS_END, pexit="1", debugerror="x"), PUBLIC)
    assert [e.type for e in seen] == [
        "task_error", "task_output_full", "task_error_full", "task_end", "task_postprocess_start",
        "task_postprocess_end",
    ]  # fmt: skip
    assert seen[-1].terminal
