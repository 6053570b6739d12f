"""``Client``: the blocking SDK. Performs the plans of ``core`` with httpx and websockets' sync API."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from fluxserve.client.actions import (
    IDLE,
    Notify,
    Plan,
    Send,
    Sleep,
    SocketClose,
    SocketOpen,
    SocketRecv,
    SocketSend,
)
from fluxserve.client.core import ClientCore, ProgressCallback, TaskRef
from fluxserve.client.inputs import FileLike
from fluxserve.client.models import Task, TaskHandle, TaskList, Tool
from fluxserve.client.waiting import wait as wait_plan

T = TypeVar("T")
SOCKET_ERRORS = (OSError, WebSocketException, TimeoutError)


class Client:
    """A fluxserve or Wiro API client.

    ``Client(base_url, api_key=..., api_secret=...)`` signs every request (``x-nonce`` and
    ``x-signature``) when a secret is given and sends the key alone otherwise. ``retries`` resends a
    request on 429/503 (honouring ``Retry-After``), on other 5xx for calls that are safe to repeat,
    and when the server cannot be reached. ``use_socket=False`` makes ``wait`` poll only.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        socket_url: str | None = None,
        use_socket: bool = True,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._core = ClientCore(
            base_url,
            api_key,
            api_secret,
            retries=retries,
            backoff=backoff,
            socket_url=socket_url,
            use_socket=use_socket,
        )
        self._owns_http = http_client is None  # a client passed in is the caller's to close
        self._http = http_client or httpx.Client(timeout=timeout, follow_redirects=True)

    @property
    def base_url(self) -> str:
        return self._core.base_url

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the API -------------------------------------------------------------------------------

    def tools(self) -> list[Tool]:
        """Every tool the server offers (Tool/List)."""
        return self._drive(self._core.tools())

    def tool(self, name: str) -> Tool:
        """One tool and its inputs (Tool/Detail); ``name`` is ``owner/project``."""
        return self._drive(self._core.tool(name))

    def run(
        self,
        tool: str | Tool,
        *,
        files: Mapping[str, FileLike] | None = None,
        callback_url: str | None = None,
        validate: bool = True,
        **inputs: Any,
    ) -> TaskHandle:
        """Start a task. Inputs are checked before sending; a local path for an image input is uploaded.

        ``files`` adds explicit file parts (part name -> path, bytes or open file).
        """
        return self._drive(self._core.run(tool, inputs, files, callback_url, validate))

    def detail(self, task: TaskRef) -> Task:
        """The task now (Task/Detail). A TaskHandle without taskid is looked up by its token."""
        return self._drive(self._core.detail(task))

    def cancel(self, task: TaskRef) -> Task:
        """Cancel a queued task."""
        return self._drive(self._core.cancel(task))

    def kill(self, task: TaskRef) -> Task:
        """Stop a running task."""
        return self._drive(self._core.kill(task))

    def list_tasks(self, start: int = 0, limit: int = 20) -> TaskList:
        """One page of the project's tasks, newest first."""
        return self._drive(self._core.list_tasks(start, limit))

    def wait(
        self,
        task: TaskRef,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.5,
    ) -> Task:
        """Block until the task is terminal; raise TaskFailed (pexit != "0") or WaitTimeout.

        ``on_progress(Progress)`` is called on every status change and denoising step.
        """
        return self._drive(wait_plan(self._core, task, timeout, on_progress, poll_interval))

    def download(self, task: TaskRef, dest: str | os.PathLike = ".") -> list[Path]:
        """Save the task's outputs into ``dest`` as ``<taskid>-<name>``; return the paths."""
        return self._drive(self._core.download(task, dest))

    # -- the driver ----------------------------------------------------------------------------

    def _drive(self, plan: Plan[T]) -> T:
        socket: ClientConnection | None = None
        result: Any = None
        try:
            while True:
                try:
                    action = plan.send(result)
                except StopIteration as stop:
                    return stop.value
                if isinstance(action, Send):
                    result = self._send(action)
                elif isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    result = None
                elif isinstance(action, Notify):
                    action.callback(action.event)
                    result = None
                elif isinstance(action, SocketOpen):
                    socket, result = _open_socket(action)
                elif isinstance(action, SocketSend):
                    result = _send_text(socket, action.text)
                elif isinstance(action, SocketRecv):
                    result = _receive(socket, action.timeout)
                elif isinstance(action, SocketClose):
                    _close(socket)
                    socket, result = None, None
                else:  # pragma: no cover - a new action type without a driver branch
                    raise TypeError(f"unknown action {action!r}")
        finally:
            plan.close()
            _close(socket)

    def _send(self, action: Send) -> httpx.Response | httpx.TransportError:
        spec = action.request
        request = self._http.build_request(
            spec.method, spec.url, headers=spec.headers, json=spec.json, data=spec.data, files=spec.files
        )
        try:
            return self._http.send(request)
        except httpx.TransportError as exc:
            return exc


def _open_socket(action: SocketOpen) -> tuple[ClientConnection | None, Exception | None]:
    try:
        return connect(action.url, open_timeout=action.timeout, legacy=True), None
    except SOCKET_ERRORS as exc:
        return None, exc


def _send_text(socket: ClientConnection | None, text: str) -> Exception | None:
    if socket is None:
        return ConnectionError("socket is not open")
    try:
        socket.send(text)
    except SOCKET_ERRORS as exc:
        return exc
    return None


def _receive(socket: ClientConnection | None, timeout: float) -> Any:
    if socket is None:
        return ConnectionError("socket is not open")
    try:
        return socket.recv(timeout=timeout)
    except TimeoutError:
        return IDLE
    except SOCKET_ERRORS as exc:
        return exc


def _close(socket: ClientConnection | None) -> None:
    if socket is not None:
        with contextlib.suppress(SOCKET_ERRORS):
            socket.close()
