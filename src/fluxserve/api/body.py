"""Request bodies as Wiro clients send them.

The seeds' curl sends a JSON body under ``Content-Type: multipart/form-data`` with no boundary;
real multipart (with file parts), ``application/x-www-form-urlencoded`` and JSON all work too.

Whatever the format, the parsed fields pass one check before any route sees them
(:func:`fluxserve.text.find_bad_value`): no lone surrogates or NUL in any text, no nesting deeper
than :data:`fluxserve.text.MAX_NESTING`. Numbers with more digits than :data:`MAX_NUMBER_DIGITS`
stay text, so the field's own coercion refuses them by name. The byte limit is enforced while the
body streams, by :class:`fluxserve.api.guard.RequestGuard`; ``_read_limited`` repeats it for callers
that build a Request without the guard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request

from fluxserve.errors import FieldError, MalformedRequestError, ValidationError
from fluxserve.text import find_bad_value

MAX_NUMBER_DIGITS = 100
"""A JSON number with more digits than this is kept as its text (no input takes one that long)."""


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
    """Fields by name (a name sent several times in multipart keeps every value, as a list) and the
    file parts in the order they came (several may share a name)."""

    fields: dict[str, Any] = field(default_factory=dict)
    parts: list[UploadedPart] = field(default_factory=list)

    def files_by_name(self) -> dict[str, UploadedPart]:
        """One file per part name; ValidationError naming every name that was sent more than once."""
        files: dict[str, UploadedPart] = {}
        repeated: dict[str, int] = {}
        for part in self.parts:
            if part.field in files:
                repeated[part.field] = repeated.get(part.field, 1) + 1
            files[part.field] = part
        if repeated:
            raise ValidationError(
                [
                    FieldError(name, f"was sent as {count} file parts; this input takes one file", file=True)
                    for name, count in repeated.items()
                ]
            )
        return files


async def parse_body(request: Request, max_bytes: int) -> ParsedBody:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data") and "boundary=" in content_type:
        body = await _parse_multipart(request, max_bytes)
        check_fields(body)
        return body
    return parse_text_body(await _read_limited(request, max_bytes), content_type)


def parse_text_body(raw: bytes, content_type: str) -> ParsedBody:
    """A body that is not real multipart (JSON, form fields, or JSON under a boundary-less multipart
    header), checked by :func:`check_fields`. ``content_type`` is lower-case."""
    body = _parse_text(raw, content_type)
    check_fields(body)
    return body


def check_fields(body: ParsedBody) -> None:
    """Refuse text no part of fluxserve can store or send, and absurd nesting, naming the field."""
    problem = find_bad_value(body.fields)
    if problem is None:
        problem = find_bad_value({part.field: part.filename for part in body.parts})
    if problem is not None:
        raise ValidationError([FieldError(*problem)])


def _parse_text(raw: bytes, content_type: str) -> ParsedBody:
    if not raw.strip():
        return ParsedBody()
    text = _decode(raw)
    if content_type.startswith("application/x-www-form-urlencoded") and not text.lstrip().startswith("{"):
        return ParsedBody(fields=dict(parse_qsl(text, keep_blank_values=True)))
    return ParsedBody(fields=_parse_json_object(text))


def parse_json_text(text: str) -> Any:
    """``json.loads`` that cannot fail in surprising ways: ValueError (with a message) or a value.

    Deep nesting (RecursionError) and over-long numbers (int conversion limits) become ValueError or
    text instead of escaping as something else.
    """
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def _parse_int(digits: str) -> int | str:
    return int(digits) if len(digits.lstrip("-")) <= MAX_NUMBER_DIGITS else digits


_DECODER = json.JSONDecoder(parse_int=_parse_int)  # json.loads(text, parse_int=…) builds one per call


def _parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = parse_json_text(text)
    except json.JSONDecodeError as exc:
        if "=" in text and not text.lstrip().startswith(("{", "[")):
            return dict(parse_qsl(text, keep_blank_values=True))
        raise MalformedRequestError(
            f"Request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "send a JSON object, form fields or multipart/form-data."
        ) from None
    except ValueError as exc:
        raise MalformedRequestError(f"Request body cannot be accepted: {exc}.") from None
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
    except BodyTooLarge:
        raise
    except Exception as exc:  # malformed multipart: python-multipart / starlette raise various errors
        raise MalformedRequestError(f"Could not parse the multipart/form-data body: {exc}") from None
    body = ParsedBody()
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                if len(data) > max_bytes:
                    raise BodyTooLarge(f"File part {name!r} is larger than the limit of {max_bytes} bytes.")
                body.parts.append(UploadedPart(name, value.filename or name, value.content_type or "", data))
            elif name in body.fields:
                previous = body.fields[name]
                body.fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                body.fields[name] = value
    finally:
        await form.close()
    return body
