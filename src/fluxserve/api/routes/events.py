"""``GET /v1/Task/Events/{token}``: the live socket's frames as Server-Sent Events.

For clients that cannot use WebSockets. Each frame is one event named after its type, with the
frame's JSON as data; the stream ends after the terminal frame. Quiet spells carry a comment
line as keep-alive. Like the socket, the socket access token is the only credential.

Browsers' EventSource reconnects when a stream ends; a reconnection (it carries
``Last-Event-ID``) to a task that has ended is answered 204, which tells EventSource to stop.
``?previews=1`` adds the latent previews (``task_preview`` events) of tasks that produce them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fluxserve.api.live import TaskFollower, error_frame
from fluxserve.api.services import ApiServices

router = APIRouter()

# The token is the only credential (no cookies), so any origin may read the stream.
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Access-Control-Allow-Origin": "*"}


def sse_message(frame: dict[str, Any], event_id: int) -> str:
    return f"id: {event_id}\nevent: {frame['type']}\ndata: {json.dumps(frame)}\n\n"


@router.get("/v1/Task/Events/{token}")
async def task_events(token: str, request: Request) -> Response:
    services = request.app.state.services
    task = await run_in_threadpool(services.store.by_token, token)
    if task is None:
        message = f"No task has the socket access token '{token}'."
        body = sse_message(error_frame(token, message), 0)
        return Response(body, status_code=404, media_type="text/event-stream", headers=_HEADERS)
    if "last-event-id" in request.headers and task.status.is_terminal():
        return Response(status_code=204)
    previews = request.query_params.get("previews", "") in ("1", "true")
    stream = _stream(services, token, previews)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_HEADERS)


async def _stream(services: ApiServices, token: str, previews: bool = False) -> AsyncIterator[str]:
    count = 0
    async with TaskFollower(services, token, previews=previews) as follower:
        async for frame in follower.frames():
            if frame is None:
                yield ": keep-alive\n\n"
                continue
            count += 1
            yield sse_message(frame, count)
