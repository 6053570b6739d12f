"""The I/O steps the shared client logic asks a driver to perform (sans-I/O style).

Every API call is written once, in ``core``, as a generator that yields these actions and receives
their results; ``sync.Client`` and ``aio.AsyncClient`` only perform them (blocking or awaiting).
Failures of the network are returned as values, never raised, so the logic decides what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None


@dataclass(frozen=True)
class Send:
    """Send the request; result: an ``httpx.Response`` (body read) or the ``httpx.TransportError``."""

    request: HttpRequest


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Notify:
    """Call ``callback(event)``; the async driver awaits the result if it is awaitable."""

    callback: Callable[[Any], Any]
    event: Any


@dataclass(frozen=True)
class SocketOpen:
    """Open the live socket; result: None, or the exception that prevented it."""

    url: str
    timeout: float


@dataclass(frozen=True)
class SocketSend:
    """Send one text frame; result: None, or the exception (the socket is then unusable)."""

    text: str


@dataclass(frozen=True)
class SocketRecv:
    """Receive one frame; result: its text, ``IDLE`` after ``timeout`` seconds, or the exception."""

    timeout: float


@dataclass(frozen=True)
class SocketClose:
    pass


class _Idle:
    def __repr__(self) -> str:
        return "IDLE"


IDLE = _Idle()
"""SocketRecv's result when nothing arrived in time."""

Action = Send | Sleep | Notify | SocketOpen | SocketSend | SocketRecv | SocketClose
Plan = Generator[Action, Any, T]
