"""Request bodies as Wiro clients send them.

The seeds' curl sends a JSON body under ``Content-Type: multipart/form-data`` with no boundary;
real multipart (with file parts), ``application/x-www-form-urlencoded`` and JSON all work too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request

from fluxserve.errors import MalformedRequestError


class BodyTooLarge(MalformedRequestError):
    pass


@dataclass(frozen=True)
class UploadedPart:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedBody:
    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedPart] = field(default_factory=dict)


async def parse_body(request: Request, max_bytes: int) -> ParsedBody:
    content_type = request.headers.get("content-type", "").lower()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise BodyTooLarge(f"Request body is {length} bytes; the limit is {max_bytes}.")
    if content_type.startswith("multipart/form-data") and "boundary=" in content_type:
        return await _parse_multipart(request, max_bytes)
    raw = await _read_limited(request, max_bytes)
    if not raw.strip():
        return ParsedBody()
    text = _decode(raw)
    if content_type.startswith("application/x-www-form-urlencoded") and not text.lstrip().startswith("{"):
        return ParsedBody(fields=dict(parse_qsl(text, keep_blank_values=True)))
    return ParsedBody(fields=_parse_json_object(text, content_type))


def _parse_json_object(text: str, content_type: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if "=" in text and not text.lstrip().startswith(("{", "[")):
            return dict(parse_qsl(text, keep_blank_values=True))
        raise MalformedRequestError(
            f"Request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "send a JSON object, form fields or multipart/form-data."
        ) from None
    if not isinstance(value, dict):
        raise MalformedRequestError(f"Request body must be a JSON object, got {type(value).__name__}.")
    return value


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequestError("Request body is not UTF-8 text.") from None


async def _read_limited(request: Request, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"Request body is larger than the limit of {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse_multipart(request: Request, max_bytes: int) -> ParsedBody:
    try:
        form = await request.form(max_files=16, max_fields=256, max_part_size=max_bytes)
    except Exception as exc:  # malformed multipart: python-multipart / starlette raise various errors
        raise MalformedRequestError(f"Could not parse the multipart/form-data body: {exc}") from None
    body = ParsedBody()
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            if len(data) > max_bytes:
                raise BodyTooLarge(f"File part {name!r} is larger than the limit of {max_bytes} bytes.")
            body.files[name] = UploadedPart(name, value.filename or name, value.content_type or "", data)
        else:
            body.fields[name] = value
    await form.close()
    return body
