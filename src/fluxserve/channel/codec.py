"""Channel messages as compact JSON bytes (orjson), the same on a Unix socket and in a NOTIFY."""

from __future__ import annotations

from typing import Any

import orjson

from fluxserve.channel import Control
from fluxserve.tasks.events import TaskEvent

MAX_NOTIFY_BYTES = 7900
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more."""


def encode_event(event: TaskEvent, origin: str = "") -> bytes:
    return orjson.dumps(
        {
            "k": "event",
            "o": origin,
            "id": event.task_id,
            "token": event.token,
            "type": event.type,
            "message": event.message,
            "terminal": event.terminal,
            "droppable": event.droppable,
            "time": event.time,
        }
    )


def encode_control(control: Control, origin: str = "") -> bytes:
    return orjson.dumps({"k": control.kind, "o": origin, "task": control.task_id})


def decode(data: bytes | str) -> tuple[str, TaskEvent | Control]:
    """(origin, message); ValueError for anything that is not a message of ours."""
    value: Any = orjson.loads(data)
    if not isinstance(value, dict) or "k" not in value:
        raise ValueError("not a channel message")
    origin = str(value.get("o", ""))
    if value["k"] == "event":
        return origin, TaskEvent(
            task_id=str(value["id"]),
            token=str(value["token"]),
            type=str(value["type"]),
            message=value.get("message", ""),
            terminal=bool(value.get("terminal")),
            droppable=bool(value.get("droppable")),
            time=float(value.get("time", 0.0)),
        )
    return origin, Control(str(value["k"]), int(value.get("task", 0)))


def fit_notify(event: TaskEvent, origin: str) -> bytes:
    """The event encoded small enough for NOTIFY: an over-long message (a huge error text) is cut."""
    data = encode_event(event, origin)
    if len(data) <= MAX_NOTIFY_BYTES:
        return data
    message = event.message if isinstance(event.message, str) else orjson.dumps(event.message).decode()
    cut = TaskEvent(
        event.task_id,
        event.token,
        event.type,
        message[: MAX_NOTIFY_BYTES // 2] + "…",
        terminal=event.terminal,
        droppable=event.droppable,
        time=event.time,
    )
    return encode_event(cut, origin)
