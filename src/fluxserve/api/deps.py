"""Helpers every route uses: the services, the authenticated project, the parsed body."""

from __future__ import annotations

from collections.abc import Mapping

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
    client_ip = request.client.host if request.client else ""
    return await project_of(services(request), request.headers, client_ip)


async def project_of(svc: ApiServices, headers: Mapping[str, str], client_ip: str) -> Project:
    """``authenticate`` on the event loop when the key is cached, else in a thread (a store read)."""
    project = svc.projects.cached((headers.get("x-api-key") or "").strip())
    if project is not None:
        return authenticate(headers, _Known(project), svc.nonce_max_age_seconds, None, client_ip)
    return await run_in_threadpool(
        authenticate, headers, svc.projects, svc.nonce_max_age_seconds, None, client_ip
    )


class _Known:
    """The project already looked up for this key (``authenticate`` checks the rest)."""

    def __init__(self, project: Project) -> None:
        self._project = project

    def project_by_key(self, api_key: str) -> Project | None:
        return self._project if api_key == self._project.api_key else None


async def body(request: Request) -> ParsedBody:
    return await parse_body(request, services(request).max_upload_bytes)


def text_field(fields: dict, *names: str) -> str:
    """The first non-empty of ``names`` in the body, as text ("" when none is given)."""
    for name in names:
        value = fields.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""
