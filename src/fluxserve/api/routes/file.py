"""File downloads (no signature: the random access key in the path is the secret) and uploads."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from fluxserve.api.deps import authenticated, body, services
from fluxserve.api.uploads import (
    GENERIC_TYPE,
    SNIFF_BYTES,
    image_type,
    served_file_key,
    store_upload,
    upload_url,
)
from fluxserve.errors import FieldError, ValidationError
from fluxserve.storage.base import StoredObject
from fluxserve.wire import ok_body

router = APIRouter()


@router.get("/v1/File/{accesskey}/{name}")
async def download(accesskey: str, name: str, request: Request):
    svc = services(request)
    key = await run_in_threadpool(served_file_key, svc, accesskey, name)
    if key is None:
        return JSONResponse({"result": False, "errors": [{"code": 1, "message": "File not found."}]}, 404)
    stored = await run_in_threadpool(svc.storage.open, key)
    if stored is None:
        return JSONResponse(
            {"result": False, "errors": [{"code": 1, "message": "File is no longer stored."}]}, 404
        )
    return await run_in_threadpool(_file_response, stored, name)


def _file_response(stored: StoredObject, name: str) -> Response:
    """Images as the type their bytes prove, inline; anything else as a download.

    The stored type is not trusted (uploads stored by older versions kept what the client declared),
    so the first bytes decide on every request. ``X-Content-Type-Options: nosniff`` is added to
    every answer by the RequestGuard.
    """
    headers = {"Cache-Control": "private, max-age=31536000, immutable"}
    if stored.path is not None:
        with open(stored.path, "rb") as handle:
            verified = image_type(handle.read(SNIFF_BYTES))
    else:
        head, chunks = _peek(stored.chunks, SNIFF_BYTES)
        verified = image_type(head)
    if verified is None:
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    content_type = verified or GENERIC_TYPE
    if stored.path is not None:
        return FileResponse(stored.path, media_type=content_type, headers=headers)
    # An object store's file is streamed through the API, not redirected to a presigned URL: the
    # download keeps this origin, its headers and its access rule (README "Run on several machines").
    headers["Content-Length"] = str(stored.size)
    return StreamingResponse(chunks, media_type=content_type, headers=headers)


def _peek(chunks: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes of a chunk stream, and the whole stream (those bytes included)."""
    taken: list[bytes] = []
    for chunk in chunks:
        taken.append(chunk)
        if sum(map(len, taken)) >= size:
            break
    return b"".join(taken)[:size], itertools.chain(taken, chunks)


@router.post("/v1/File/Upload")
async def upload(request: Request) -> JSONResponse:
    """Store files for later use: a Run may name them (e.g. "inputImageUrl": "room.jpg")."""
    project = await authenticated(request)
    parsed = await body(request)
    if not parsed.parts:
        raise ValidationError(
            [FieldError("file", "send one or more files as multipart/form-data file parts")]
        )
    svc = services(request)
    items = []
    for part in parsed.parts:  # every part, even several under one name
        record = await run_in_threadpool(store_upload, svc, project.id, part)
        items.append(
            {
                "id": str(record.id),
                "name": record.name,
                "contenttype": record.contenttype,
                "size": str(record.size),
                "accesskey": record.accesskey,
                "url": upload_url(svc, record),
            }
        )
    return JSONResponse(ok_body(list=items))
