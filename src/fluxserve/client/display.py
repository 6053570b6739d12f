"""How the command line shows things: rich tables for tools and tasks, and the progress display."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from fluxserve.client.models import Progress as TaskProgress
from fluxserve.client.models import Task, TaskList, Tool

STATUS_LABELS = {
    "task_queue": "queued",
    "task_accept": "accepted",
    "task_assign": "assigned",
    "task_preprocess_start": "preparing",
    "task_preprocess_end": "prepared",
    "task_start": "generating",
    "task_output": "saving",
    "task_postprocess_end": "done",
    "task_cancel": "cancelled",
}


def _short(value: Any, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tools_table(tools: list[Tool]) -> Table:
    table = Table(title=f"{len(tools)} tools", title_justify="left")
    table.add_column("tool", style="bold", no_wrap=True)
    table.add_column("categories")
    table.add_column("description")
    for tool in tools:
        table.add_row(tool.name, ", ".join(tool.categories), _short(tool.description or tool.title, 70))
    return table


def tool_table(tool: Tool) -> Table:
    table = Table(title=f"{tool.name}\n{_short(tool.description, 200)}", title_justify="left")
    table.add_column("input", style="bold", no_wrap=True)
    table.add_column("type")
    table.add_column("default")
    table.add_column("options")
    table.add_column("help")
    for item in tool.inputs:
        options = ", ".join(_option_text(option) for option in item.options)
        table.add_row(
            item.name, item.type, _short(item.default, 40), _short(options, 80), _short(item.help, 50)
        )
    return table


def _option_text(option: dict[str, Any]) -> str:
    value, label = str(option.get("value", "")), str(option.get("label", ""))
    return value if not label or label == value else f"{value} ({label})"


def task_summary(task: Task) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("task", task.id)
    label = "failed" if task.failed else STATUS_LABELS.get(task.status, "?")
    table.add_row("status", f"{task.status} ({label})")
    table.add_row("token", task.socketaccesstoken)
    if task.elapsedseconds:
        table.add_row("elapsed", f"{task.elapsedseconds}s")
    if task.failed or task.debugerror:
        table.add_row("error", f"pexit {task.pexit}: {task.debugerror}")
    elif task.debugoutput and not task.is_terminal:
        table.add_row("progress", _short(task.debugoutput, 100))
    for output in task.outputs:
        table.add_row("output", f"{output.name}  {output.url}")
    return table


def tasks_table(page: TaskList, start: int) -> Table:
    shown = f"{start + 1}-{start + len(page.tasks)}" if page.tasks else "none"
    table = Table(title=f"tasks {shown} of {page.total}", title_justify="left")
    for column in ("task", "status", "created", "elapsed", "outputs", "error"):
        table.add_column(column)
    for task in page.tasks:
        error = _short(task.debugerror, 40) if task.failed else ""
        table.add_row(
            task.id, task.status, task.createtime, task.elapsedseconds, str(len(task.outputs)), error
        )
    return table


class ProgressDisplay:
    """``on_progress`` for the CLI: a live bar on a terminal, one plain line per event otherwise.

    The bar shows the status, steps done of total, speed and the remaining time the server reports.
    """

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.live = console.is_terminal
        self._bar: Progress | None = None
        self._id: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps {task.fields[speed]}"),
                TextColumn("ETA {task.fields[eta]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar.start()
            self._id = self._bar.add_task(self.label, total=None, speed="", eta="?")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: TaskProgress) -> None:
        status = STATUS_LABELS.get(event.status, event.status)
        speed = f"{event.speed:.2f} {event.speed_type}".strip() if event.speed is not None else ""
        if self._bar is not None:
            fields: dict[str, Any] = {"description": f"{self.label} {status}"}
            if event.has_steps:
                fields.update(
                    total=event.total, completed=event.step, speed=speed, eta=event.remaining or "?"
                )
            elif event.status == "task_postprocess_end" and self._bar.tasks[0].total:
                fields.update(completed=self._bar.tasks[0].total, eta="0s")
            self._bar.update(self._id, **fields)
        elif event.has_steps:
            eta = f" ETA {event.remaining}" if event.remaining else ""
            self.console.print(
                f"{self.label} step {event.step}/{event.total} {speed}{eta}".rstrip(), highlight=False
            )
        else:
            self.console.print(f"{self.label} {status}", highlight=False)
