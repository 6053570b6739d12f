"""Task statuses, in the order a task passes through them, and the time field each one stamps."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    QUEUE = "task_queue"
    ACCEPT = "task_accept"
    ASSIGN = "task_assign"
    PREPROCESS_START = "task_preprocess_start"
    PREPROCESS_END = "task_preprocess_end"
    START = "task_start"
    OUTPUT = "task_output"
    POSTPROCESS_END = "task_postprocess_end"
    CANCEL = "task_cancel"

    def is_terminal(self) -> bool:
        return self in (TaskStatus.POSTPROCESS_END, TaskStatus.CANCEL)

    def is_running(self) -> bool:
        """Claimed by a worker and not yet finished."""
        return not self.is_terminal() and self is not TaskStatus.QUEUE


RUNNING_STATUSES: tuple[TaskStatus, ...] = tuple(s for s in TaskStatus if s.is_running())

PIPELINE_ORDER: tuple[TaskStatus, ...] = (
    TaskStatus.QUEUE,
    TaskStatus.ACCEPT,
    TaskStatus.ASSIGN,
    TaskStatus.PREPROCESS_START,
    TaskStatus.PREPROCESS_END,
    TaskStatus.START,
    TaskStatus.OUTPUT,
    TaskStatus.POSTPROCESS_END,
)

TIME_FIELD: dict[TaskStatus, str] = {
    TaskStatus.QUEUE: "createtime",
    TaskStatus.ACCEPT: "accepttime",
    TaskStatus.ASSIGN: "assigntime",
    TaskStatus.PREPROCESS_START: "preprocessstarttime",
    TaskStatus.PREPROCESS_END: "preprocessendtime",
    TaskStatus.START: "starttime",
    TaskStatus.OUTPUT: "endtime",
    TaskStatus.POSTPROCESS_END: "postprocessendtime",
    TaskStatus.CANCEL: "canceltime",
}
"""The time column each status stamps when a task enters it (task_output marks the end of inference)."""


def can_advance(current: TaskStatus, new: TaskStatus) -> bool:
    """Forward moves along PIPELINE_ORDER, or to task_cancel/task_postprocess_end from any live status."""
    if current.is_terminal():
        return False
    if new in (TaskStatus.CANCEL, TaskStatus.POSTPROCESS_END):
        return True
    return PIPELINE_ORDER.index(new) > PIPELINE_ORDER.index(current)
