"""Helpers for following tasks live in tests: the /v1 socket (`websockets`) and the SSE stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"
STATUS_ORDER = [
    "task_queue",
    "task_accept",
    "task_assign",
    "task_preprocess_start",
    "task_preprocess_end",
    "task_start",
    "task_output",
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
    """The frame types, progress frames left out."""
    return [frame["type"] for frame in frames if not is_progress(frame)]


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
