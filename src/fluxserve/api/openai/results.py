"""Waiting for an OpenAI request's task(s) and turning their outputs into OpenAI's image objects.

The API process never runs models: it follows each task like a socket client does
(:class:`fluxserve.api.live.TaskFollower`: event bus first, the store as fallback) and reads the
finished task's outputs from the store and the file storage.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from PIL import Image
from starlette.concurrency import run_in_threadpool

from fluxserve.api.body import UploadedPart
from fluxserve.api.live import TaskFollower
from fluxserve.api.openai.errors import OpenAIError
from fluxserve.api.openai.params import ImageRequest
from fluxserve.api.services import ApiServices
from fluxserve.api.uploads import store_upload, upload_url
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.status import TaskStatus
from fluxserve.wire import file_url

_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@dataclass(frozen=True)
class FinishedImage:
    data: bytes  # in the requested output format
    url: str
    size: tuple[int, int]


async def follow(
    svc: ApiServices, task: TaskRecord, deadline: float, previews: bool = False
) -> AsyncIterator[dict[str, Any] | None]:
    """The task's frames until its end (None after quiet spells); OpenAIError 504 at ``deadline``
    (loop time), when the task keeps running and stays visible in Task/Detail."""
    loop = asyncio.get_running_loop()
    async with TaskFollower(svc, task.token, previews=previews) as follower:
        frames = follower.frames()
        while True:
            remaining = deadline - loop.time()
            try:
                async with asyncio.timeout(max(0.0, remaining)):
                    frame = await anext(frames)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise OpenAIError(
                    504,
                    f"Task {task.taskid} did not finish within {svc.openai_wait_seconds:g} seconds; it keeps "
                    f"running: follow it with POST /v1/Task/Detail (taskid {task.taskid}) or kill it with "
                    "POST /v1/Task/Kill.",
                    kind="server_error",
                    code="timeout",
                ) from None
            yield frame


async def finished_images(svc: ApiServices, task: TaskRecord, request: ImageRequest) -> list[FinishedImage]:
    """The ended task's images in the requested format; OpenAIError when it failed or was killed."""
    final = await run_in_threadpool(svc.store.get, task.id)
    if final.status is TaskStatus.CANCEL:
        raise OpenAIError(
            409, f"Task {final.taskid} was cancelled or killed before it finished.", code="task_cancelled"
        )
    if final.pexit not in ("", "0") or not final.outputs:
        message = final.debugerror or "the task produced no image"
        raise OpenAIError(
            500, f"Task {final.taskid} failed: {message}", kind="server_error", code="task_failed"
        )
    return await run_in_threadpool(_convert_outputs, svc, final, request)


def _convert_outputs(svc: ApiServices, task: TaskRecord, request: ImageRequest) -> list[FinishedImage]:
    images = []
    for output in task.outputs:
        data = _read(svc, output.storage_key)
        converted, size = convert(data, output.contenttype, request.output_format, request.output_compression)
        if converted is data:
            url = file_url(svc.public_url, output.accesskey, output.name)
        else:  # the requested format differs from what the tool wrote: keep the converted file too
            stem = output.name.rsplit(".", 1)[0]
            name = f"{task.uuid}-{stem}.{request.output_format}"
            part = UploadedPart("image", name, _CONTENT_TYPES[request.output_format], converted)
            url = upload_url(svc, store_upload(svc, task.project_id, part))
        images.append(FinishedImage(converted, url, size))
    return images


def _read(svc: ApiServices, key: str) -> bytes:
    """An output's bytes from whichever storage the service uses (local folder or S3)."""
    stored = svc.storage.open(key)
    if stored is None:
        raise OpenAIError(500, f"The output file {key} is missing from storage.", kind="server_error")
    if stored.path is not None:
        return stored.path.read_bytes()
    return b"".join(stored.chunks or ())


def convert(
    data: bytes, content_type: str, output_format: str, compression: int
) -> tuple[bytes, tuple[int, int]]:
    """``data`` as ``output_format`` (the same bytes object when nothing needs to change) and its size.

    ``compression`` (0-100, OpenAI's ``output_compression``) sets JPEG/WebP quality."""
    image = Image.open(io.BytesIO(data))
    lossy = output_format in ("jpeg", "webp")
    if content_type == _CONTENT_TYPES[output_format] and not (lossy and compression < 100):
        return data, image.size
    buffer = io.BytesIO()
    if output_format == "png":
        image.save(buffer, format="PNG")
    else:
        image.convert("RGB").save(buffer, format=_PIL_FORMATS[output_format], quality=max(1, compression))
    return buffer.getvalue(), image.size


def image_object(image: FinishedImage, request: ImageRequest) -> dict[str, str]:
    if request.response_format == "b64_json":
        return {"b64_json": base64.b64encode(image.data).decode("ascii")}
    return {"url": image.url}


def preview_b64(frame_message: dict[str, str], output_format: str) -> str:
    """A task_preview frame's image, re-encoded in the request's output format (it is a small JPEG)."""
    if output_format == "jpeg":
        return frame_message["image"]
    data, _ = convert(base64.b64decode(frame_message["image"]), "image/jpeg", output_format, 100)
    return base64.b64encode(data).decode("ascii")
