"""Every API call, written once as a plan of I/O actions (see ``actions``) shared by both clients."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from fluxserve.client.actions import HttpRequest, Plan, Send, Sleep
from fluxserve.client.envelope import read_envelope, transport_error
from fluxserve.client.errors import NotFound, ServerError, ValidationFailed
from fluxserve.client.inputs import FileLike, RunPayload, builtin_spec, prepare_run, spec_from_tool
from fluxserve.client.live import socket_url_for
from fluxserve.client.models import Progress, Task, TaskHandle, TaskList, Tool
from fluxserve.client.retry import RetryPolicy
from fluxserve.client.signing import Signer

logger = logging.getLogger(__name__)

TaskRef = TaskHandle | Task | str
"""A task given by handle, by Task, or by its id."""

ProgressCallback = Callable[[Progress], Any]


class ClientCore:
    """Configuration plus the plans for each call; holds no connection and does no I/O itself."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        socket_url: str | None = None,
        use_socket: bool = True,
    ) -> None:
        base = base_url.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]  # accept Wiro's documented "https://api.wiro.ai/v1" as well
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base
        self.signer = Signer(api_key, api_secret)
        self.retry = RetryPolicy(retries=retries, backoff=backoff)
        self.socket_url = socket_url or socket_url_for(base)
        self.use_socket = use_socket

    # -- plumbing ------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def send(self, build: Callable[[], HttpRequest], *, idempotent: bool = True) -> Plan[httpx.Response]:
        """Send with retries; ``build`` runs per attempt so every attempt carries a fresh nonce."""
        attempt = 0
        while True:
            request = build()
            outcome = yield Send(request)
            delay = self.retry.delay(attempt, outcome, idempotent)
            if delay is None:
                if isinstance(outcome, Exception):
                    raise transport_error(outcome, request.url)
                return outcome
            logger.info(
                "retrying %s %s in %.1fs (%s)", request.method, request.url, delay, _describe(outcome)
            )
            yield Sleep(delay)
            attempt += 1

    def post(self, path: str, body: dict[str, Any] | None = None, *, idempotent: bool = True) -> Plan[dict]:
        def build() -> HttpRequest:
            return HttpRequest("POST", self.url(path), headers=self.signer.headers(), json=body or {})

        response = yield from self.send(build, idempotent=idempotent)
        return read_envelope(response)

    # -- tools ---------------------------------------------------------------------------------

    def tools(self) -> Plan[list[Tool]]:
        body = yield from self.post("/v1/Tool/List")
        return [Tool.from_wire(item) for item in body.get("tool") or [] if isinstance(item, dict)]

    def tool(self, name: str) -> Plan[Tool]:
        owner, project = split_tool_name(name)
        body = yield from self.post("/v1/Tool/Detail", {"slugowner": owner, "slugproject": project})
        tools = [Tool.from_wire(item) for item in body.get("tool") or [] if isinstance(item, dict)]
        if not tools:
            raise NotFound(f"Tool '{name}' does not exist", code=1, status=200)
        return tools[0]

    # -- tasks ---------------------------------------------------------------------------------

    def run(
        self,
        tool: str | Tool,
        inputs: Mapping[str, Any],
        files: Mapping[str, FileLike] | None = None,
        callback_url: str | None = None,
        validate: bool = True,
    ) -> Plan[TaskHandle]:
        name = tool.name if isinstance(tool, Tool) else tool
        owner, project = split_tool_name(name)
        payload = yield from self.prepare(tool, inputs, files, callback_url, validate)
        path = f"/v1/Run/{quote(owner, safe='')}/{quote(project, safe='')}"

        def build() -> HttpRequest:
            headers = self.signer.headers()
            if payload.files:
                files = {
                    key: (part.filename, part.content, part.content_type)
                    for key, part in payload.files.items()
                }
                return HttpRequest("POST", self.url(path), headers=headers, data=payload.fields, files=files)
            return HttpRequest("POST", self.url(path), headers=headers, json=payload.fields)

        response = yield from self.send(build, idempotent=False)
        handle = TaskHandle.from_wire(read_envelope(response))
        logger.debug("started task %s on %s", handle.taskid, name)
        return handle

    def prepare(
        self,
        tool: str | Tool,
        inputs: Mapping[str, Any],
        files: Mapping[str, FileLike] | None,
        callback_url: str | None,
        validate: bool,
    ) -> Plan[RunPayload]:
        """Validate and build the Run body; only a tool outside the built-in catalog costs a Tool/Detail."""
        name = tool.name if isinstance(tool, Tool) else tool
        spec = builtin_spec(name)
        if spec is not None:
            return prepare_run(spec, inputs, files, callback_url, check=validate)
        if not isinstance(tool, Tool):
            tool = yield from self.tool(name)
        return prepare_run(
            spec_from_tool(tool), inputs, files, callback_url, full_rules=False, check=validate
        )

    def detail(self, task: TaskRef) -> Plan[Task]:
        handle = as_handle(task)
        body = {"taskid": handle.taskid} if handle.taskid else {"tasktoken": handle.socketaccesstoken}
        return (yield from self._one_task("/v1/Task/Detail", body, handle))

    def cancel(self, task: TaskRef) -> Plan[Task]:
        return (yield from self._one_task("/v1/Task/Cancel", _id_body(as_handle(task)), as_handle(task)))

    def kill(self, task: TaskRef) -> Plan[Task]:
        return (yield from self._one_task("/v1/Task/Kill", _id_body(as_handle(task)), as_handle(task)))

    def _one_task(self, path: str, body: dict[str, str], handle: TaskHandle) -> Plan[Task]:
        try:
            answer = yield from self.post(path, body)
        except NotFound as exc:  # Wiro says "There is no task yet."; say which task
            ref = handle.taskid or handle.socketaccesstoken
            raise NotFound(
                f"task {ref}: {exc.message}", code=exc.code, status=exc.status, errors=exc.errors
            ) from None
        tasks = [Task.from_wire(item) for item in answer.get("tasklist") or [] if isinstance(item, dict)]
        if not tasks:
            raise NotFound(
                f"task {handle.taskid or handle.socketaccesstoken} does not exist", code=1, status=200
            )
        return tasks[0]

    def list_tasks(self, start: int = 0, limit: int = 20) -> Plan[TaskList]:
        answer = yield from self.post("/v1/Task/List", {"start": str(start), "limit": str(limit)})
        tasks = [Task.from_wire(item) for item in answer.get("tasklist") or [] if isinstance(item, dict)]
        try:
            total = int(answer.get("total", len(tasks)))
        except (TypeError, ValueError):
            total = len(tasks)
        return TaskList(total=total, tasks=tasks)

    # -- files ---------------------------------------------------------------------------------

    def download(self, task: TaskRef, dest: str | os.PathLike) -> Plan[list[Path]]:
        """Save every output as ``<dest>/<taskid>-<name>`` (the task id keeps runs from overwriting)."""
        if not (isinstance(task, Task) and task.is_terminal):
            task = yield from self.detail(task)
        folder = Path(dest).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for index, output in enumerate(task.outputs):
            url = urljoin(self.base_url + "/", output.url)
            # Output URLs need no signature, and may point at a CDN: the API key is not sent there.
            response = yield from self.send(lambda url=url: HttpRequest("GET", url))
            if response.status_code != 200:
                error = NotFound if response.status_code == 404 else ServerError
                raise error(
                    f"download of {output.name or url} failed: HTTP {response.status_code}",
                    status=response.status_code,
                )
            name = Path(output.name).name or f"output-{index}"
            saved.append(_write_atomically(folder / f"{task.id}-{name}", response.content))
        return saved


def _write_atomically(path: Path, content: bytes) -> Path:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def split_tool_name(name: str) -> tuple[str, str]:
    owner, _, project = name.strip().strip("/").partition("/")
    if not owner or not project or "/" in project:
        raise ValidationFailed(
            f"tool must be written owner/project (e.g. wiro/text-to-image-flux-lora-fast), got {name!r}"
        )
    return owner, project


def as_handle(task: TaskRef) -> TaskHandle:
    if isinstance(task, TaskHandle):
        return task
    if isinstance(task, Task):
        return task.handle
    if isinstance(task, str) and task.strip():
        return TaskHandle(taskid=task.strip(), socketaccesstoken="")
    raise TypeError(f"expected a TaskHandle, a Task or a task id, got {task!r}")


def _id_body(handle: TaskHandle) -> dict[str, str]:
    return {"taskid": handle.taskid} if handle.taskid else {"socketaccesstoken": handle.socketaccesstoken}


def _describe(outcome: httpx.Response | Exception) -> str:
    if isinstance(outcome, httpx.Response):
        return f"HTTP {outcome.status_code}"
    return type(outcome).__name__
