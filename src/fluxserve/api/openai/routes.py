"""``POST /v1/images/generations``, ``POST /v1/images/edits``, ``GET /v1/models``.

Each request becomes one or more ordinary tasks (the same path as ``/v1/Run``: validation,
limits, the queue), visible in Task/List and Detail and killable. The answer waits for them
(at most ``FLUXSERVE_OPENAI_WAIT_SECONDS``) or, with ``stream: true``, streams OpenAI's events:
``image_generation.partial_image`` (latent previews, ``partial_images`` of them) then one
``image_generation.completed`` per image (``image_edit.*`` on /edits).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from fluxserve.api.body import ParsedBody, UploadedPart, parse_body
from fluxserve.api.openai.auth import authenticate_bearer
from fluxserve.api.openai.errors import OpenAIRoute, as_openai_error, bad_request
from fluxserve.api.openai.models import models_list, resolve_model
from fluxserve.api.openai.params import (
    ImageRequest,
    base_seed,
    hidden_inputs,
    parse_request,
    task_batches,
    tool_fields,
)
from fluxserve.api.openai.results import finished_images, follow, image_object, preview_b64
from fluxserve.api.routes.run import queue_task
from fluxserve.api.services import ApiServices
from fluxserve.tasks.events import PREVIEW_EVENT
from fluxserve.tasks.records import Project, TaskRecord

router = APIRouter(route_class=OpenAIRoute)

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EDIT_IMAGE_PARTS = ("inputImage", "inputImage2")
"""The Kontext tool's file parts that /edits' first and second image fill."""


def _services(request: Request) -> ApiServices:
    return request.app.state.services


async def _project(request: Request) -> Project:
    svc = _services(request)
    client_ip = request.client.host if request.client else ""
    authorization = request.headers.get("authorization", "")
    return await run_in_threadpool(authenticate_bearer, authorization, svc.store, client_ip)


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    await _project(request)
    return JSONResponse(models_list(_services(request).catalog, int(time.time())))


@router.post("/v1/images/generations")
async def generate_images(request: Request) -> Response:
    project = await _project(request)
    svc = _services(request)
    parsed = await parse_body(request, svc.max_upload_bytes)
    model = resolve_model(svc.catalog, _text(parsed.fields.get("model")), edits=False)
    image_request = parse_request(parsed.fields, model)
    tasks = await run_in_threadpool(_queue, svc, project, image_request, {})
    return await _answer(svc, image_request, tasks, "image_generation")


@router.post("/v1/images/edits")
async def edit_images(request: Request) -> Response:
    project = await _project(request)
    svc = _services(request)
    fields, images = await _edit_body(request, svc.max_upload_bytes)
    model = resolve_model(svc.catalog, _text(fields.get("model")), edits=True)
    image_request = parse_request(fields, model)
    if not 1 <= len(images) <= 2:
        raise bad_request(
            f"image: send one or two images (as 'image' or 'image[]' file parts), got {len(images)}.", "image"
        )
    pair = images if len(images) == 2 else images * 2  # one image: it is both of Kontext's references
    files = dict(zip(EDIT_IMAGE_PARTS, pair, strict=True))
    tasks = await run_in_threadpool(_queue, svc, project, image_request, files)
    return await _answer(svc, image_request, tasks, "image_edit")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _queue(
    svc: ApiServices, project: Project, request: ImageRequest, files: dict[str, UploadedPart]
) -> list[TaskRecord]:
    """One task per batch of images. The tasks differ only in seed and sample count, so a bad field
    fails on the first, before anything is queued; a limit reached midway leaves the earlier ones."""
    seed = base_seed(request)
    bodies, offset = [], 0
    for count in task_batches(request):
        parts = [replace(part, field=name) for name, part in files.items()]
        bodies.append(ParsedBody(fields=tool_fields(request, count, offset, seed), parts=parts))
        offset += count
    hidden = hidden_inputs(request)
    return [queue_task(svc, project, request.model.spec, body, hidden) for body in bodies]


async def _answer(svc: ApiServices, request: ImageRequest, tasks: list[TaskRecord], kind: str) -> Response:
    headers = {"x-fluxserve-task-ids": ",".join(task.taskid for task in tasks)}
    if request.stream:
        stream = _stream(svc, request, tasks, kind)
        return StreamingResponse(stream, media_type="text/event-stream", headers={**_SSE_HEADERS, **headers})
    deadline = asyncio.get_running_loop().time() + svc.openai_wait_seconds
    data: list[dict[str, str]] = []
    size = ""
    for task in tasks:
        async for _frame in follow(svc, task, deadline):
            pass
        for image in await finished_images(svc, task, request):
            data.append(image_object(image, request))
            size = size or f"{image.size[0]}x{image.size[1]}"
    body = {"created": int(time.time()), "data": data, "output_format": request.output_format, "size": size}
    return JSONResponse(body, headers=headers)


async def _stream(
    svc: ApiServices, request: ImageRequest, tasks: list[TaskRecord], kind: str
) -> AsyncIterator[str]:
    """OpenAI's image stream: ``partial_images`` previews at most, then every image completed.
    An error after the stream began is sent as an ``error`` event (the SDKs raise it)."""
    deadline = asyncio.get_running_loop().time() + svc.openai_wait_seconds
    partials = 0
    try:
        for task in tasks:
            async for frame in follow(svc, task, deadline, previews=request.partial_images > 0):
                if frame is None:
                    yield ": keep-alive\n\n"
                elif frame["type"] == PREVIEW_EVENT and partials < request.partial_images:
                    event = _event(
                        request, kind, "partial_image", preview_b64(frame["message"], request.output_format)
                    )
                    event["partial_image_index"] = partials
                    partials += 1
                    yield _sse(event)
            for image in await finished_images(svc, task, request):
                event = _event(request, kind, "completed", base64.b64encode(image.data).decode("ascii"))
                event["size"] = f"{image.size[0]}x{image.size[1]}"
                event["usage"] = {
                    "input_tokens": 0,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
                    "output_tokens": 0,
                    "total_tokens": 0,
                }
                yield _sse(event)
    except Exception as exc:  # the status line is gone: report in the stream
        error = as_openai_error(exc)
        yield f"event: error\ndata: {json.dumps({'type': 'error', **error.body()})}\n\n"


def _event(request: ImageRequest, kind: str, what: str, b64: str) -> dict[str, Any]:
    size = f"{request.size[0]}x{request.size[1]}" if request.size else "auto"
    return {
        "type": f"{kind}.{what}",
        "b64_json": b64,
        "created_at": int(time.time()),
        "size": size,
        "quality": "auto",
        "background": "opaque",
        "output_format": request.output_format,
    }


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def _edit_body(request: Request, max_bytes: int) -> tuple[dict[str, Any], list[UploadedPart]]:
    """/edits' fields and its images in the order sent (``image`` and/or repeated ``image[]``)."""
    parsed = await parse_body(request, max_bytes)
    if any(part.field == "mask" for part in parsed.parts):
        raise bad_request("mask: masks are not supported; Kontext edits from the prompt alone.", "mask")
    return parsed.fields, [part for part in parsed.parts if part.field in ("image", "image[]")]
