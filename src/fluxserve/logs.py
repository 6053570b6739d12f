"""Logging set-up for the entry points: text or JSON lines, with the current task on every line.

``with task_context(task_id, project, tool):`` around the handling of one task makes every log record
emitted meanwhile in that thread (worker, engine, callback delivery) carry ``task_id``, ``project``
and ``tool``; the JSON format writes them as fields, the text format appends them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator

_TASK: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("fluxserve_task", default=None)
_FIELDS = ("task_id", "project", "tool")


@contextlib.contextmanager
def task_context(task_id: object, project: object, tool: str) -> Iterator[None]:
    token = _TASK.set({"task_id": str(task_id), "project": str(project), "tool": tool})
    try:
        yield
    finally:
        _TASK.reset(token)


class TaskContextFilter(logging.Filter):
    """Copies the current task (if any) onto each record as ``task_id``, ``project``, ``tool``."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _TASK.get() or {}
        for name in _FIELDS:
            if not getattr(record, name, ""):
                setattr(record, name, current.get(name, ""))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, task_id/project/tool, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, "")
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if getattr(record, "task_id", ""):
            line += f" [task={record.task_id} project={record.project} tool={record.tool}]"
        return line


def configure_logging(level: str, fmt: str = "text") -> None:
    """Root logging to stderr; ``fmt`` is ``text`` or ``json`` (FLUXSERVE_LOG_FORMAT)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(JsonFormatter() if fmt.lower() == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
