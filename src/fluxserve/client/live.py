"""The live task socket: where it is, and what its frames mean."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fluxserve.client.models import Progress
from fluxserve.tasks.status import TaskStatus

STATUSES = frozenset(status.value for status in TaskStatus)


WIRO_API_HOST = "api.wiro.ai"
WIRO_SOCKET_URL = "wss://socket.wiro.ai/v1"


def socket_url_for(base_url: str) -> str:
    """fluxserve serves the socket at ``/v1`` on the API's host (http -> ws, https -> wss).

    The hosted Wiro API keeps it on a host of its own.
    """
    parts = urlsplit(base_url)
    if parts.hostname == WIRO_API_HOST:
        return WIRO_SOCKET_URL
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/v1", "", ""))


def subscribe_message(tasktoken: str) -> str:
    return json.dumps({"type": "task_info", "tasktoken": tasktoken})


@dataclass(frozen=True)
class Frame:
    """One server frame. ``status`` is set for status frames, ``progress`` for step frames."""

    type: str
    ok: bool
    status: str | None
    progress: dict[str, Any] | None
    message: Any


def parse_frame(text: str | bytes) -> Frame | None:
    """None for anything that is not a JSON object (ignored, like unknown frame types)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    kind = str(data.get("type") or "")
    message = data.get("message")
    if isinstance(message, str):
        with contextlib.suppress(ValueError):
            message = json.loads(message)
    progress = message if isinstance(message, dict) and message.get("type") == "progressGenerate" else None
    # A task_output frame whose message is plain text is a log line of the running task, not a status.
    log_line = kind == "task_output" and isinstance(message, str) and message.strip() != ""
    status = kind if kind in STATUSES and progress is None and not log_line else None
    return Frame(
        type=kind, ok=data.get("result", True) is not False, status=status, progress=progress, message=message
    )


def frame_progress(frame: Frame, last_status: str) -> Progress | None:
    if frame.progress is None:
        return None
    return Progress.from_generate(last_status or "task_start", frame.progress)
