"""The hot path: Task/Detail and Task/List answered straight from ASGI, ahead of FastAPI's machinery.

Clients poll Detail all the time (Wiro's own clients every 2–20 s, thousands of them on a busy
deployment). Going through FastAPI costs about six middleware layers, the router's matching,
the dependency solver and Starlette's Request object on every poll — several times the work of
answering it from the task cache. :class:`FastPath` serves these two routes itself, with the same
behaviour as the FastAPI routes it stands in front of, which stay registered (they serve real
multipart bodies and document the endpoints in ``/openapi.json``):

* the same authentication (``deps.project_of``), body parsing (``body.parse_text_body``), task
  lookup and answer (``routes.task.detail_answer`` / ``list_answer``);
* the same error answers in Wiro's shape (``errors.error_response``; a bug is logged and answered
  like ``errors._unexpected`` does);
* what ``guard.RequestGuard`` guarantees: the body limit counted as the body streams (a declared
  length over the limit goes the normal way and is refused there), ``X-Content-Type-Options:
  nosniff`` on every answer.

Anything else — another method or path, a multipart body with a boundary — goes the normal way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from starlette.types import Receive, Scope, Send

from fluxserve.api.body import BodyTooLarge, parse_text_body
from fluxserve.api.deps import project_of
from fluxserve.api.errors import INTERNAL_ERROR, error_response
from fluxserve.api.routes.task import detail_answer, list_answer
from fluxserve.api.services import ApiServices
from fluxserve.errors import ClientError
from fluxserve.tasks.records import Project
from fluxserve.wire import error_body

log = logging.getLogger(__name__)

Answer = Callable[[ApiServices, Project, dict], Awaitable[bytes]]  # the encoded JSON answer

ROUTES: dict[str, Answer] = {"/v1/Task/Detail": detail_answer, "/v1/Task/List": list_answer}

_NOSNIFF = (b"x-content-type-options", b"nosniff")


class _Disconnected(Exception):
    """The client went away before its body arrived: nothing to answer."""


class FastPath:
    def __init__(self, services: ApiServices, routes: dict[str, Answer] | None = None) -> None:
        self._services = services
        self._routes = ROUTES if routes is None else routes

    def route(self, scope: Scope) -> Answer | None:
        """The answer function for this request, or None when it must go the normal way."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        answer = self._routes.get(scope["path"])
        if answer is None:
            return None
        for name, value in scope["headers"]:
            if name == b"content-type" and _real_multipart(value.lower()):
                return None  # file parts: Starlette's form parser, on the FastAPI route
            if name == b"content-length":
                length = value.strip()
                if length.isdigit() and int(length) > self._services.max_upload_bytes:
                    return None  # RequestGuard answers 413 before reading anything
        return answer

    async def serve(self, answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        try:
            raw = await self._read_body(receive)
            fields = parse_text_body(raw, headers.get("content-type", "").lower()).fields
            client = scope.get("client")
            project = await project_of(self._services, headers, client[0] if client else "")
            body = await answer(self._services, project, fields)
        except _Disconnected:
            return
        except ClientError as exc:
            response = error_response(exc)
            response.raw_headers.append(_NOSNIFF)
            await response(scope, receive, send)
            return
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            body = orjson.dumps(error_body([(0, INTERNAL_ERROR)]))
        await send({"type": "http.response.start", "status": 200, "headers": _json_headers(len(body))})
        await send({"type": "http.response.body", "body": body})

    async def _read_body(self, receive: Receive) -> bytes:
        limit = self._services.max_upload_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"Request body is larger than the limit of {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _real_multipart(content_type: bytes) -> bool:
    """As ``body.parse_body`` decides: multipart with a boundary (the seeds' curl sends none)."""
    return content_type.startswith(b"multipart/form-data") and b"boundary=" in content_type


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by (lower-case) name, the first of repeated ones, as Starlette's ``get``."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def _json_headers(length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(length).encode()), (b"content-type", b"application/json"), _NOSNIFF]
