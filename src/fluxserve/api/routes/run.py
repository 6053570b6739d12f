"""POST /v1/Run/{owner}/{tool}: validate against the catalog, store the task, queue it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from fluxserve.api.body import ParsedBody
from fluxserve.api.deps import authenticated, body, services, text_field
from fluxserve.api.limits import check_task_size
from fluxserve.api.services import ApiServices
from fluxserve.api.uploads import store_upload, upload_url
from fluxserve.catalog.coerce import InvalidValue, http_url, looks_like_http_url
from fluxserve.catalog.model import ToolSpec
from fluxserve.catalog.request import validate_request
from fluxserve.errors import FieldError, ToolUnavailableError, ValidationError
from fluxserve.tasks.records import Project, TaskRecord
from fluxserve.wire import ok_body

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
    svc.on_task_queued()
    return task


def _create_task(
    svc: ApiServices, project: Project, spec: ToolSpec, parsed: ParsedBody, hidden: dict[str, Any]
) -> TaskRecord:
    fields = dict(parsed.fields)
    files: dict[str, str] = {}
    uploaded_urls: dict[str, str] = {}
    for part_name, part in parsed.files_by_name().items():
        input_name = spec.file_fields.get(part_name) or (part_name if spec.input(part_name) else None)
        if input_name is None:
            raise ValidationError(
                [FieldError(part_name, f"this tool takes no file; file inputs: {_file_inputs(spec)}")]
            )
        upload = store_upload(svc, project.id, part)
        files[input_name] = upload.storage_key
        uploaded_urls[input_name] = upload_url(svc, upload)
    _resolve_earlier_uploads(svc, project, spec, fields, files, uploaded_urls)
    validated = validate_request(
        spec, fields, frozenset(k for k, v in spec.file_fields.items() if v in files)
    )
    check_task_size(validated.values, svc.max_task_pixels)
    values = {**validated.values, **uploaded_urls, **hidden}
    parameters = {**validated.parameters, **uploaded_urls}
    callback, note = _callback_url(fields)
    return svc.store.create_task(
        project.id,
        spec.tool,
        values,
        parameters,
        files=files,
        callbackurl=callback,
        debugoutput=note,
        max_concurrent=project.max_concurrent,
        max_queued=svc.max_queued_tasks,
    )


def _resolve_earlier_uploads(
    svc: ApiServices,
    project: Project,
    spec: ToolSpec,
    fields: dict[str, Any],
    files: dict[str, str],
    uploaded_urls: dict[str, str],
) -> None:
    """An image input given as a bare file name refers to the project's upload of that name."""
    errors = []
    for spec_input in spec.inputs:
        if spec_input.rules.kind != "image" or spec_input.name in files:
            continue
        value = fields.get(spec_input.name)
        value = value.strip() if isinstance(value, str) else ""
        if not value or looks_like_http_url(value):
            continue  # a URL (checked by the input's coercion) or nothing
        upload = svc.store.upload_by_name(project.id, value)
        if upload is None:
            errors.append(
                FieldError(
                    spec_input.name,
                    f"{value!r} is neither an http(s) URL nor the name of a file uploaded to this project "
                    f"(upload it with POST /v1/File/Upload or send it as the file part "
                    f"'{spec_input.rules.file_field}')",
                )
            )
            continue
        files[spec_input.name] = upload.storage_key
        uploaded_urls[spec_input.name] = upload_url(svc, upload)
    if errors:
        raise ValidationError(errors)


def _file_inputs(spec: ToolSpec) -> str:
    return ", ".join(spec.file_fields) or "none"


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
