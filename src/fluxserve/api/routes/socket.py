"""The live task socket at ``/v1`` (Wiro's ``wss://socket.wiro.ai/v1`` on the service's own port).

The client sends ``{"type": "task_info", "tasktoken": "<socketaccesstoken>"}``, gets the
acknowledgement ``{"type": "task_info", "result": true, "message": null, ...}``, then one JSON text
frame per event (websocket.md's types, in its order) until the terminal one, after which the
server closes the socket. Like Wiro's, the socket authenticates by the unguessable token alone
(no API key): the token is only ever handed to whoever ran the task. An unknown token or a
malformed registration gets one error frame (``result: false``) and a normal close.

Latent previews (``task_preview`` frames) are off unless the registration asks:
``{"type": "task_info", "tasktoken": "…", "previews": true}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from fluxserve.api.body import parse_json_text
from fluxserve.api.live import TaskFollower, acknowledgement, error_frame
from fluxserve.errors import NotFoundError
from fluxserve.text import find_bad_value

log = logging.getLogger(__name__)

router = APIRouter()

REGISTER_TIMEOUT_SECONDS = 30.0
"""How long an opened socket may stay silent before sending its task_info."""


_CLIENT_GONE = (WebSocketDisconnect, RuntimeError, OSError)
"""What sending or receiving raises once the client has gone."""


class _BadRegistration(Exception):
    pass


@router.websocket("/v1")
async def task_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        token, previews = await _registration(websocket)
    except WebSocketDisconnect:
        return
    except _BadRegistration as exc:
        await _refuse(websocket, "", str(exc))
        return
    try:
        async with TaskFollower(websocket.app.state.services, token, previews=previews) as follower:
            await websocket.send_text(json.dumps(acknowledgement(follower.task_id, token)))
            await _until_end_or_gone(_send_frames(websocket, follower), _watch_disconnect(websocket))
    except NotFoundError as exc:
        await _refuse(websocket, token, str(exc))
        return
    await _close(websocket)


async def _registration(websocket: WebSocket) -> tuple[str, bool]:
    """The token from the client's task_info message, and whether it asks for previews."""
    try:
        async with asyncio.timeout(REGISTER_TIMEOUT_SECONDS):
            text = await websocket.receive_text()
    except TimeoutError:
        raise _BadRegistration(
            f"No task_info message within {REGISTER_TIMEOUT_SECONDS:.0f} seconds."
        ) from None
    except KeyError:  # a binary frame
        raise _BadRegistration("Send the task_info message as a JSON text frame.") from None
    try:
        message: Any = parse_json_text(text)
    except ValueError as exc:
        raise _BadRegistration(f"The task_info message is not usable JSON ({exc}).") from None
    problem = find_bad_value(message)
    if problem is not None:
        field, reason = problem
        raise _BadRegistration(f"The task_info message's {field} {reason}.")
    if not isinstance(message, dict) or message.get("type") != "task_info":
        raise _BadRegistration('Expected {"type": "task_info", "tasktoken": "<socketaccesstoken>"}.')
    token = message.get("tasktoken")
    if not isinstance(token, str) or not token.strip():
        raise _BadRegistration("The task_info message has no tasktoken.")
    return token.strip(), message.get("previews") in (True, "true", "1", 1)


async def _send_frames(websocket: WebSocket, follower: TaskFollower) -> None:
    async for frame in follower.frames():
        if frame is not None:
            await websocket.send_text(json.dumps(frame))


async def _watch_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) whatever the client sends, until it goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _until_end_or_gone(sending: Any, watching: Any) -> None:
    """Run the sender until the terminal frame is out, or stop early if the client disconnects."""
    send_task = asyncio.ensure_future(sending)
    watch_task = asyncio.ensure_future(watching)
    try:
        await asyncio.wait({send_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (send_task, watch_task):
            task.cancel()
        results = await asyncio.gather(send_task, watch_task, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception) and not isinstance(
            result, WebSocketDisconnect | RuntimeError | OSError
        ):
            raise result


async def _refuse(websocket: WebSocket, token: str, message: str) -> None:
    log.info("live socket refused: %s", message)
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(json.dumps(error_frame(token, message)))
    await _close(websocket)


async def _close(websocket: WebSocket) -> None:
    if websocket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(code=1000)
