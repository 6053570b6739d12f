"""``AsyncClient``: the asyncio SDK, same API as ``Client`` (every call awaitable)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

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


class AsyncClient:
    """The asyncio twin of :class:`fluxserve.client.Client`; see it for the meaning of each call.

    ``on_progress`` given to ``wait`` may be a plain function or a coroutine function.
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
        http_client: httpx.AsyncClient | None = None,
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
        self._http = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    @property
    def base_url(self) -> str:
        return self._core.base_url

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def tools(self) -> list[Tool]:
        return await self._drive(self._core.tools())

    async def tool(self, name: str) -> Tool:
        return await self._drive(self._core.tool(name))

    async def run(
        self,
        tool: str | Tool,
        *,
        files: Mapping[str, FileLike] | None = None,
        callback_url: str | None = None,
        validate: bool = True,
        **inputs: Any,
    ) -> TaskHandle:
        return await self._drive(self._core.run(tool, inputs, files, callback_url, validate))

    async def detail(self, task: TaskRef) -> Task:
        return await self._drive(self._core.detail(task))

    async def cancel(self, task: TaskRef) -> Task:
        return await self._drive(self._core.cancel(task))

    async def kill(self, task: TaskRef) -> Task:
        return await self._drive(self._core.kill(task))

    async def list_tasks(self, start: int = 0, limit: int = 20) -> TaskList:
        return await self._drive(self._core.list_tasks(start, limit))

    async def wait(
        self,
        task: TaskRef,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.5,
    ) -> Task:
        return await self._drive(wait_plan(self._core, task, timeout, on_progress, poll_interval))

    async def download(self, task: TaskRef, dest: str | os.PathLike = ".") -> list[Path]:
        return await self._drive(self._core.download(task, dest))

    async def _drive(self, plan: Plan[T]) -> T:
        socket: ClientConnection | None = None
        result: Any = None
        try:
            while True:
                try:
                    action = plan.send(result)
                except StopIteration as stop:
                    return stop.value
                if isinstance(action, Send):
                    result = await self._send(action)
                elif isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                    result = None
                elif isinstance(action, Notify):
                    outcome = action.callback(action.event)
                    if inspect.isawaitable(outcome):
                        await outcome
                    result = None
                elif isinstance(action, SocketOpen):
                    socket, result = await _open_socket(action)
                elif isinstance(action, SocketSend):
                    result = await _send_text(socket, action.text)
                elif isinstance(action, SocketRecv):
                    result = await _receive(socket, action.timeout)
                elif isinstance(action, SocketClose):
                    await _close(socket)
                    socket, result = None, None
                else:  # pragma: no cover - a new action type without a driver branch
                    raise TypeError(f"unknown action {action!r}")
        finally:
            plan.close()
            await _close(socket)

    async def _send(self, action: Send) -> httpx.Response | httpx.TransportError:
        spec = action.request
        request = self._http.build_request(
            spec.method, spec.url, headers=spec.headers, json=spec.json, data=spec.data, files=spec.files
        )
        try:
            return await self._http.send(request)
        except httpx.TransportError as exc:
            return exc


async def _open_socket(action: SocketOpen) -> tuple[ClientConnection | None, Exception | None]:
    try:
        return await connect(action.url, open_timeout=action.timeout), None
    except SOCKET_ERRORS as exc:
        return None, exc


async def _send_text(socket: ClientConnection | None, text: str) -> Exception | None:
    if socket is None:
        return ConnectionError("socket is not open")
    try:
        await socket.send(text)
    except SOCKET_ERRORS as exc:
        return exc
    return None


async def _receive(socket: ClientConnection | None, timeout: float) -> Any:
    if socket is None:
        return ConnectionError("socket is not open")
    try:
        return await asyncio.wait_for(socket.recv(), timeout)
    except TimeoutError:
        return IDLE
    except SOCKET_ERRORS as exc:
        return exc


async def _close(socket: ClientConnection | None) -> None:
    if socket is not None:
        with contextlib.suppress(SOCKET_ERRORS):
            await socket.close()
