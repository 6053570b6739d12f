"""The client commands of ``fluxserve``: tools, tool, run, task detail|kill|cancel|list.

``register(app)`` adds them to the main Typer app (``fluxserve.cli``). Credentials come from flags
or ``FLUXSERVE_URL``, ``FLUXSERVE_API_KEY``, ``FLUXSERVE_API_SECRET``. Every failure prints one
line on stderr and exits non-zero; no traceback reaches the user.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from fluxserve.client.core import split_tool_name
from fluxserve.client.display import ProgressDisplay, task_summary, tasks_table, tool_table, tools_table
from fluxserve.client.errors import FluxserveAPIError, ValidationFailed
from fluxserve.client.inputs import builtin_spec, spec_from_tool
from fluxserve.client.models import Task, TaskHandle
from fluxserve.client.sync import Client
from fluxserve.errors import FluxserveError

F = TypeVar("F", bound=Callable[..., Any])

Url = Annotated[str, typer.Option("--url", envvar="FLUXSERVE_URL", help="API base URL.", show_default=True)]
ApiKey = Annotated[str, typer.Option("--api-key", envvar="FLUXSERVE_API_KEY", help="Project API key.")]
ApiSecret = Annotated[
    str,
    typer.Option("--api-secret", envvar="FLUXSERVE_API_SECRET", help="Project API secret (omit: key-only)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the raw JSON instead of a table.")]
TaskId = Annotated[str, typer.Argument(help="Task id (or the socket access token with --token).")]
ByToken = Annotated[bool, typer.Option("--token", help="TASK is a socket access token, not an id.")]

DEFAULT_URL = "http://127.0.0.1:8000"


def _stdout() -> Console:
    return Console(soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def friendly(command: F) -> F:
    """Turn every expected failure into ``error: <one line>`` on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (FluxserveError, OSError, ValueError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            _stderr().print(f"[bold red]error:[/] {message}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt as exc:
            detail = f": {exc}" if str(exc) else ""
            _stderr().print(f"[bold red]error:[/] interrupted{detail}", highlight=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def connect(url: str, api_key: str, api_secret: str, **options: Any) -> Client:
    if not api_key:
        raise ValueError("no API key: pass --api-key or set FLUXSERVE_API_KEY")
    return Client(url or DEFAULT_URL, api_key=api_key, api_secret=api_secret or None, **options)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# -- tools ------------------------------------------------------------------------------------------


@friendly
def tools_command(
    url: Url = DEFAULT_URL, api_key: ApiKey = "", api_secret: ApiSecret = "", as_json: AsJson = False
):
    """List the tools the server offers."""
    with connect(url, api_key, api_secret) as client:
        tools = client.tools()
    if as_json:
        _print_json([tool.raw for tool in tools])
    else:
        _stdout().print(tools_table(tools))


@friendly
def tool_command(
    name: Annotated[str, typer.Argument(help="Tool as owner/project.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    api_secret: ApiSecret = "",
    as_json: AsJson = False,
):
    """Show one tool's inputs, defaults and options."""
    with connect(url, api_key, api_secret) as client:
        tool = client.tool(name)
    if as_json:
        _print_json(tool.raw)
    else:
        _stdout().print(tool_table(tool))


# -- run --------------------------------------------------------------------------------------------


@friendly
def run_command(
    tool: Annotated[
        str, typer.Argument(help="Tool as owner/project, e.g. wiro/text-to-image-flux-lora-fast.")
    ],
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="The prompt.")] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Another input as key=value (repeatable).")
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="First input image: a local path or a URL.")
    ] = None,
    image2: Annotated[
        str | None, typer.Option("--image2", help="Second input image: a local path or a URL.")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results.")] = Path("."),
    callback_url: Annotated[
        str | None, typer.Option("--callback-url", help="POSTed when the task ends.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Give up waiting after this many seconds.")
    ] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Print the task id and return at once.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    api_secret: ApiSecret = "",
):
    """Run a tool, show its progress, save the images and print their paths."""
    split_tool_name(tool)
    inputs = _parse_settings(settings or [])
    if prompt is not None:
        inputs["prompt"] = prompt
    err = _stderr()
    with connect(url, api_key, api_secret) as client:
        if image is not None or image2 is not None:
            inputs.update(_image_inputs(client, tool, [image, image2]))
        handle = client.run(tool, callback_url=callback_url, **inputs)
        err.print(f"task {handle.taskid} started on {tool}", highlight=False)
        if no_wait:
            _stdout().print(handle.taskid, highlight=False)
            return
        try:
            with ProgressDisplay(err, f"task {handle.taskid}") as display:
                task = client.wait(handle, timeout=timeout, on_progress=display)
        except KeyboardInterrupt:
            hint = f"task {handle.taskid} keeps running; `fluxserve task kill {handle.taskid}` stops it"
            raise KeyboardInterrupt(hint) from None
        if task.cancelled:
            raise FluxserveAPIError(f"task {task.id} was cancelled")
        paths = client.download(task, output)
    out = _stdout()
    for path in paths:
        out.print(str(path), highlight=False, soft_wrap=True)


def _parse_settings(settings: list[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationFailed(f"--set expects key=value, got {item!r}")
        inputs[key.strip()] = value
    return inputs


def _image_inputs(client: Client, tool: str, images: list[str | None]) -> dict[str, Any]:
    """Map --image/--image2 to the tool's first and second image inputs (a URL, or a path to upload)."""
    spec = builtin_spec(tool) or spec_from_tool(client.tool(tool))
    slots = [item.name for item in spec.inputs if item.rules.kind == "image"]
    inputs: dict[str, Any] = {}
    for position, (flag, value) in enumerate(zip(("--image", "--image2"), images, strict=True)):
        if value is None:
            continue
        if position >= len(slots):
            raise ValidationFailed(f"{flag}: {tool} takes {len(slots) or 'no'} input image(s)")
        if "://" not in value and not Path(value).expanduser().is_file():
            raise ValidationFailed(f"{flag}: {value!r} is neither a URL nor an existing file")
        inputs[slots[position]] = value if "://" in value else Path(value).expanduser()
    return inputs


# -- task -------------------------------------------------------------------------------------------


def _ref(task: str, by_token: bool) -> str | TaskHandle:
    return TaskHandle(taskid="", socketaccesstoken=task) if by_token else task


def _show_task(task: Task, as_json: bool) -> None:
    if as_json:
        _print_json(task.raw)
    else:
        _stdout().print(task_summary(task))


@friendly
def task_detail(
    task: TaskId,
    by_token: ByToken = False,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    api_secret: ApiSecret = "",
):
    """Show a task's status, error and outputs."""
    with connect(url, api_key, api_secret) as client:
        _show_task(client.detail(_ref(task, by_token)), as_json)


@friendly
def task_kill(
    task: TaskId,
    by_token: ByToken = False,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    api_secret: ApiSecret = "",
):
    """Stop a running task."""
    with connect(url, api_key, api_secret) as client:
        _show_task(client.kill(_ref(task, by_token)), as_json)


@friendly
def task_cancel(
    task: TaskId,
    by_token: ByToken = False,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    api_secret: ApiSecret = "",
):
    """Cancel a queued task."""
    with connect(url, api_key, api_secret) as client:
        _show_task(client.cancel(_ref(task, by_token)), as_json)


@friendly
def task_list(
    start: Annotated[int, typer.Option("--start", min=0, help="Skip this many tasks.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 20,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    api_secret: ApiSecret = "",
):
    """List the project's tasks, newest first."""
    with connect(url, api_key, api_secret) as client:
        page = client.list_tasks(start, limit)
    if as_json:
        _print_json({"total": page.total, "tasklist": [task.raw for task in page.tasks]})
    else:
        _stdout().print(tasks_table(page, start))


def register(app: typer.Typer) -> None:
    """Add ``tools``, ``tool``, ``run`` and ``task detail|kill|cancel|list`` to ``app``."""
    app.command("tools")(tools_command)
    app.command("tool")(tool_command)
    app.command("run")(run_command)
    tasks = typer.Typer(help="Show, stop or list tasks.", no_args_is_help=True)
    tasks.command("detail")(task_detail)
    tasks.command("kill")(task_kill)
    tasks.command("cancel")(task_cancel)
    tasks.command("list")(task_list)
    app.add_typer(tasks, name="task")
