"""Helpers every route uses: the services, the authenticated project, the parsed body."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluxserve.api.auth import authenticate
from fluxserve.api.body import ParsedBody, parse_body
from fluxserve.api.services import ApiServices
from fluxserve.tasks.records import Project


def services(request: Request) -> ApiServices:
    return request.app.state.services


async def authenticated(request: Request) -> Project:
    """The request's project; from the project cache without leaving the event loop when it can."""
    svc = services(request)
    client_ip = request.client.host if request.client else ""
    if svc.projects.cached((request.headers.get("x-api-key") or "").strip()) is not None:
        return authenticate(request.headers, svc.projects, svc.nonce_max_age_seconds, None, client_ip)
    return await run_in_threadpool(
        authenticate, request.headers, svc.projects, svc.nonce_max_age_seconds, None, client_ip
    )


async def body(request: Request) -> ParsedBody:
    return await parse_body(request, services(request).max_upload_bytes)


def text_field(fields: dict, *names: str) -> str:
    """The first non-empty of ``names`` in the body, as text ("" when none is given)."""
    for name in names:
        value = fields.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""
