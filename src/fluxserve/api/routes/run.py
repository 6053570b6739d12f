"""POST /v1/Run/{owner}/{tool}: validate against the catalog, store the task, queue it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluxserve.api.body import ParsedBody
from fluxserve.api.deps import authenticated, body, services, text_field
from fluxserve.api.images import resolve_images
from fluxserve.api.limits import check_task_size
from fluxserve.api.responses import JSONResponse
from fluxserve.api.services import ApiServices
from fluxserve.catalog.batching import batch_key
from fluxserve.catalog.coerce import InvalidValue, http_url, looks_like_http_url
from fluxserve.catalog.model import ToolSpec
from fluxserve.catalog.request import validate_request
from fluxserve.errors import FieldError, ToolUnavailableError, ValidationError
from fluxserve.logs import task_context
from fluxserve.tasks.records import Project, TaskRecord
from fluxserve.wire import ok_body

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/v1/Run/{owner}/{tool}")
async def run_tool(owner: str, tool: str, request: Request) -> JSONResponse:
    project = await authenticated(request)
    parsed = await body(request)
    svc = services(request)
    spec = svc.catalog.get(f"{owner}/{tool}")
    task = await run_in_threadpool(queue_task, svc, project, spec, parsed)
    return JSONResponse(ok_body(taskid=task.taskid, socketaccesstoken=task.token))


def queue_task(
    svc: ApiServices,
    project: Project,
    spec: ToolSpec,
    parsed: ParsedBody,
    hidden: dict[str, Any] | None = None,
) -> TaskRecord:
    """The one way a request becomes a queued task (Run and the OpenAI routes): availability,
    uploads, validation, the store, the worker's wake-up. ``hidden`` inputs reach the worker but
    not the task's wire parameters (e.g. how many previews to make)."""
    reason = svc.availability(spec.engine)
    if reason:
        raise ToolUnavailableError(f"{spec.tool} cannot run on this fluxserve instance: {reason}")
    task = _create_task(svc, project, spec, parsed, hidden or {})
    with task_context(task.id, project.name, spec.tool):
        log.info("task %s queued", task.id)
    svc.on_task_queued()
    return task


def _create_task(
    svc: ApiServices, project: Project, spec: ToolSpec, parsed: ParsedBody, hidden: dict[str, Any]
) -> TaskRecord:
    fields = _file_urls_given_in_the_file_field(spec, dict(parsed.fields))
    images = resolve_images(svc, project, spec, parsed, fields)  # file parts, earlier uploads, URLs
    validated = validate_request(spec, fields, images.sent_parts(spec))
    check_task_size(validated.values, svc.max_task_pixels)
    values = {**validated.values, **images.echoed, **hidden}
    parameters = {**validated.parameters, **images.echoed}
    callback, note = _callback_url(fields)
    return svc.store.create_task(
        project.id,
        spec.tool,
        values,
        parameters,
        files=images.storage_keys,
        callbackurl=callback,
        debugoutput=note,
        max_concurrent=project.max_concurrent,
        max_queued=svc.max_queued_tasks,
        batch_key=batch_key(spec, validated.values),  # hidden inputs (previews) never split a batch
    )


CALLBACK_FIELDS = ("callbackUrl", "callbackurl", "callback_url")


def _callback_url(fields: dict[str, Any]) -> tuple[str, str]:
    """The callback URL, and a note for debugoutput when the value is not one we can call.

    Text that is no http(s) URL at all (the seeds' placeholder "You can provide a callback URL") is
    kept and explained; an http(s) URL that can never be called (control characters, no host, a
    broken IPv6 literal or port) is refused here, naming the field, rather than failing later.
    """
    name = next((key for key in CALLBACK_FIELDS if text_field(fields, key)), CALLBACK_FIELDS[0])
    value = text_field(fields, name)
    if not value:
        return "", ""
    if not looks_like_http_url(value):
        return value, "callbackUrl is not an http(s) URL, so no callback will be sent."
    try:
        http_url(value)
    except InvalidValue as exc:
        raise ValidationError([FieldError(name, str(exc))]) from None
    return value, ""


def _file_urls_given_in_the_file_field(spec: ToolSpec, fields: dict[str, Any]) -> dict[str, Any]:
    """model-parameters.md: a URL may go in ``{id}Url`` or directly in ``{id}`` (``inputImage``)."""
    for spec_input in spec.inputs:
        part = spec_input.rules.file_field
        given = fields.get(part) if part else None
        if isinstance(given, str) and given.strip() and not str(fields.get(spec_input.name) or "").strip():
            fields[spec_input.name] = given.strip()
    return fields
