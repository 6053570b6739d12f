"""The events that end a task, built in one place from its stored record.

A task ends in a worker (success, failure, kill), in the API (Cancel, a Kill of a queued task) or in
the lease sweeper (too many crashed attempts). Whoever ends it records the end in the store and then
calls :func:`publish_end`; a live follower that missed the events rebuilds the very same frames with
:func:`end_events` (``api/live.py``). So the frames of an end are the same whoever decided it:

* success: ``task_output_full`` (the whole output log, ``debugoutput``), ``task_end``,
  ``task_postprocess_start``, ``task_postprocess_end`` (message: the outputs);
* failure (``pexit`` not ``"0"``): ``task_error`` (the ``debugerror``), ``task_output_full``,
  ``task_error_full`` (the ``debugerror``), then the last three above with an empty outputs array;
* cancel or kill: ``task_cancel`` (message: the outputs array, empty).
"""

from __future__ import annotations

from fluxserve.tasks.events import EventBus, TaskEvent
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.status import TaskStatus
from fluxserve.wire import file_url


def outputs_message(task: TaskRecord, public_url: str) -> list[dict[str, str]]:
    """The terminal frame's message: the task's outputs as ``{name, contenttype, size, url}``."""
    return [
        {
            "name": output.name,
            "contenttype": output.contenttype,
            "size": str(output.size),
            "url": file_url(public_url, output.accesskey, output.name),
        }
        for output in task.outputs
    ]


def end_events(task: TaskRecord, public_url: str) -> list[TaskEvent]:
    """The events of ``task``'s end, in order, the last one terminal; ``[]`` while it has not ended."""

    def event(kind: str, message: object = "", terminal: bool = False) -> TaskEvent:
        return TaskEvent(task.taskid, task.token, kind, message, terminal=terminal)

    if task.status is TaskStatus.CANCEL:
        return [event(TaskStatus.CANCEL.value, outputs_message(task, public_url), terminal=True)]
    if task.status is not TaskStatus.POSTPROCESS_END:
        return []
    failed = task.pexit not in ("", "0")
    return [  # websocket.md's order of the end frames
        *([event("task_error", task.debugerror)] if failed else []),
        event("task_output_full", task.debugoutput),
        *([event("task_error_full", task.debugerror)] if failed else []),
        event("task_end"),
        event("task_postprocess_start"),
        event(TaskStatus.POSTPROCESS_END.value, outputs_message(task, public_url), terminal=True),
    ]


def publish_end(events: EventBus, task: TaskRecord, public_url: str) -> None:
    """Tell live followers (socket, SSE) that ``task`` ended; call after the store recorded the end."""
    for event in end_events(task, public_url):
        events.publish(event)
