"""Task/Detail, Task/List, Task/Cancel (queued) and Task/Kill (running)."""

from __future__ import annotations

import asyncio
import time

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from fluxserve.api.deps import authenticated, body, services, text_field
from fluxserve.api.paging import LIMIT, START, paging_value
from fluxserve.api.responses import JSONResponse
from fluxserve.api.services import ApiServices
from fluxserve.errors import MissingIdentifierError
from fluxserve.tasks.ends import publish_end
from fluxserve.tasks.records import Project, TaskRecord
from fluxserve.wire import ok_body

router = APIRouter()


async def _find_task(request: Request, project: Project) -> TaskRecord:
    return await find_task(services(request), project, (await body(request)).fields)


async def find_task(svc: ApiServices, project: Project, fields: dict) -> TaskRecord:
    """The project's task named by ``taskid``, ``tasktoken``/``socketaccesstoken`` or ``uuid``."""
    taskid = text_field(fields, "taskid", "id")
    token = text_field(fields, "tasktoken", "socketaccesstoken")
    task_uuid = text_field(fields, "uuid")
    if not (taskid or token or task_uuid):
        raise MissingIdentifierError("Give the task as 'taskid', 'tasktoken', 'socketaccesstoken' or 'uuid'.")
    cached = svc.tasks.cached(project.id, taskid=taskid, token=token) if not task_uuid else None
    if cached is not None:  # answered without leaving the event loop
        return cached
    find = svc.tasks.find
    return await run_in_threadpool(find, project.id, taskid=taskid, token=token, task_uuid=task_uuid)


async def detail_answer(svc: ApiServices, project: Project, fields: dict) -> bytes:
    """Task/Detail's answer, encoded (also served by the hot path, ``api/fast.py``)."""
    return svc.detail_json(await find_task(svc, project, fields))


async def list_answer(svc: ApiServices, project: Project, fields: dict) -> bytes:
    """Task/List's answer, encoded (also served by the hot path, ``api/fast.py``)."""
    start = paging_value(fields, START)
    limit = paging_value(fields, LIMIT)
    total, tasks = await run_in_threadpool(svc.store.list, project.id, start, limit)
    return orjson.dumps(ok_body(total=str(total), tasklist=[svc.task_json(task) for task in tasks]))


@router.post("/v1/Task/Detail")
async def task_detail(request: Request) -> JSONResponse:
    """Answered by the hot path (``api/fast.py``) for every body but real multipart; kept here for
    those and for the OpenAPI document."""
    project = await authenticated(request)
    return _encoded(await detail_answer(services(request), project, (await body(request)).fields))


@router.post("/v1/Task/List")
async def task_list(request: Request) -> JSONResponse:
    """Answered by the hot path like Task/Detail."""
    project = await authenticated(request)
    return _encoded(await list_answer(services(request), project, (await body(request)).fields))


def _encoded(content: bytes) -> Response:
    return Response(content, media_type="application/json")


@router.post("/v1/Task/Cancel")
async def task_cancel(request: Request) -> JSONResponse:
    project = await authenticated(request)
    task = await _find_task(request, project)
    svc = services(request)
    cancelled = await run_in_threadpool(svc.store.cancel_queued, task)
    publish_end(svc.events, cancelled, svc.public_url)
    return JSONResponse(ok_body(tasklist=[svc.task_json(cancelled)]))


@router.post("/v1/Task/Kill")
async def task_kill(request: Request) -> JSONResponse:
    """Set the kill flag and wait (up to kill_wait_seconds) for the worker to stop the task."""
    project = await authenticated(request)
    task = await _find_task(request, project)
    svc = services(request)
    current = await run_in_threadpool(svc.store.request_kill, task)
    if current.status.is_terminal():  # it was still queued: cancelled here, no worker will say so
        publish_end(svc.events, current, svc.public_url)
    else:
        svc.on_kill_requested(task.id)
    deadline = time.monotonic() + svc.kill_wait_seconds
    while not current.status.is_terminal() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        current = await run_in_threadpool(svc.store.get, task.id)
    return JSONResponse(ok_body(tasklist=[svc.task_json(current)]))
