"""Tool/List and Tool/Detail: the catalog, inputs exactly as the seeds list them."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from fluxserve.api.deps import authenticated, body, services, text_field
from fluxserve.wire import ok_body, tool_to_wire

router = APIRouter()


@router.post("/v1/Tool/List")
async def tool_list(request: Request) -> JSONResponse:
    await authenticated(request)
    await body(request)
    svc = services(request)
    tools = [tool_to_wire(tool, svc.availability(tool.engine)) for tool in svc.catalog]
    return JSONResponse(ok_body(tool=tools, total=str(len(tools))))


@router.post("/v1/Tool/Detail")
async def tool_detail(request: Request) -> JSONResponse:
    await authenticated(request)
    fields = (await body(request)).fields
    svc = services(request)
    owner = text_field(fields, "slugowner")
    project = text_field(fields, "slugproject")
    slug = text_field(fields, "slug", "tool") or f"{owner}/{project}"
    tool = svc.catalog.get(slug)
    return JSONResponse(ok_body(tool=[tool_to_wire(tool, svc.availability(tool.engine))]))
