"""Task/Detail, Task/List, Task/Cancel (queued) and Task/Kill (running)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluxserve.api.deps import authenticated, body, services, text_field
from fluxserve.api.paging import LIMIT, START, paging_value
from fluxserve.api.responses import JSONResponse
from fluxserve.errors import MissingIdentifierError
from fluxserve.tasks.ends import publish_end
from fluxserve.tasks.records import Project, TaskRecord
from fluxserve.wire import ok_body

router = APIRouter()


async def _find_task(request: Request, project: Project) -> TaskRecord:
    fields = (await body(request)).fields
    taskid = text_field(fields, "taskid", "id")
    token = text_field(fields, "tasktoken", "socketaccesstoken")
    task_uuid = text_field(fields, "uuid")
    if not (taskid or token or task_uuid):
        raise MissingIdentifierError("Give the task as 'taskid', 'tasktoken', 'socketaccesstoken' or 'uuid'.")
    tasks = services(request).tasks
    cached = tasks.cached(project.id, taskid=taskid, token=token) if not task_uuid else None
    if cached is not None:  # answered without leaving the event loop
        return cached
    return await run_in_threadpool(tasks.find, project.id, taskid=taskid, token=token, task_uuid=task_uuid)


@router.post("/v1/Task/Detail")
async def task_detail(request: Request) -> JSONResponse:
    project = await authenticated(request)
    task = await _find_task(request, project)
    return JSONResponse(ok_body(total="1", tasklist=[services(request).task_json(task)]))


@router.post("/v1/Task/List")
async def task_list(request: Request) -> JSONResponse:
    project = await authenticated(request)
    fields = (await body(request)).fields
    start = paging_value(fields, START)
    limit = paging_value(fields, LIMIT)
    svc = services(request)
    total, tasks = await run_in_threadpool(svc.store.list, project.id, start, limit)
    return JSONResponse(ok_body(total=str(total), tasklist=[svc.task_json(task) for task in tasks]))


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
