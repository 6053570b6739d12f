"""Helpers for following tasks live in tests: the /v1 socket (`websockets`) and the SSE stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from fluxserve.tasks.events import InProcessEventBus
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.status import TIME_FIELD, TaskStatus
from tests.support.service import Service

PUBLIC = "http://files.example"
"""The public URL of fake services."""

KREA = "black-forest-labs/FLUX.1-Krea-dev"
STATUS_ORDER = [
    "task_queue",
    "task_accept",
    "task_assign",
    "task_preprocess_start",
    "task_preprocess_end",
    "task_start",
    "task_output",
    "task_output_full",
    "task_end",
    "task_postprocess_start",
    "task_postprocess_end",
]
"""The non-progress frames of a task that succeeds, in order."""


def run_krea(service: Service, steps: int, size: int = 64) -> dict[str, Any]:
    return service.run(KREA, prompt="a red fox", steps=str(steps), width=str(size), height=str(size))


def socket_url(service: Service) -> str:
    return service.base_url.replace("http://", "ws://") + "/v1"


@contextmanager
def register(service: Service, token: str, **options: Any) -> Iterator[ClientConnection]:
    """An open socket that has sent its task_info registration for ``token``."""
    with connect(socket_url(service), open_timeout=10, **options) as socket:
        socket.send(json.dumps({"type": "task_info", "tasktoken": token}))
        yield socket


def read_all(socket: ClientConnection, timeout: float = 120) -> list[dict[str, Any]]:
    """Every frame until the server closes the socket (it must close normally)."""
    frames = []
    try:
        while True:
            frames.append(json.loads(socket.recv(timeout=timeout)))
    except ConnectionClosedOK:
        pass
    assert socket.close_code == 1000
    return frames


def follow(service: Service, token: str) -> list[dict[str, Any]]:
    with register(service, token) as socket:
        return read_all(socket)


def is_progress(frame: dict[str, Any]) -> bool:
    return frame["type"] == "task_output" and isinstance(frame["message"], dict)


def statuses(frames: list[dict[str, Any]]) -> list[str]:
    """The frame types, progress frames and the socket's registration acknowledgement left out."""
    return [frame["type"] for frame in frames if not is_progress(frame) and frame["type"] != "task_info"]


@dataclass
class SseEvent:
    event: str
    data: dict[str, Any]
    id: str


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Server-Sent Events from a line stream (comments skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                data = json.loads(fields["data"])
                yield SseEvent(fields.get("event", "message"), data, fields.get("id", ""))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


# --- in-process fakes for TaskFollower and the routes ---------------------------------------


def task_record(status: TaskStatus = TaskStatus.QUEUE, **changes: Any) -> TaskRecord:
    """A task as the store hands it out (id 7, token "tok"), with ``changes`` applied."""
    record = TaskRecord(
        id=7,
        uuid="u-7",
        token="tok",
        project_id=1,
        tool="black-forest-labs/FLUX.1-Krea-dev",
        inputs={},
        parameters={},
        files={},
        status=status,
        debugoutput="",
        debugerror="",
        pexit="",
        callbackurl="",
        times=dict.fromkeys(set(TIME_FIELD.values()) | {"postprocessstarttime"}, 0.0),
        attempts=1,
        kill_requested=False,
        worker_id="w",
        lease_expires_at=0.0,
        callback_state="",
        callback_attempts=0,
    )
    return replace(record, **changes)


class FakeStore:
    """The one store method the live routes use."""

    def __init__(self, task: TaskRecord | None) -> None:
        self.task = task
        self.reads = 0

    def by_token(self, token: str) -> TaskRecord | None:
        self.reads += 1
        return self.task if self.task is not None and self.task.token == token else None


def fake_services(task: TaskRecord | None, bus: InProcessEventBus | None = None) -> SimpleNamespace:
    """What TaskFollower needs from ApiServices: the store, the bus, the public URL, the poll time."""
    return SimpleNamespace(
        store=FakeStore(task), events=bus or InProcessEventBus(), public_url=PUBLIC, live_poll_seconds=1.0
    )
