"""Typed views of the wire JSON (tasks, outputs, tools, errors, progress), parsed leniently.

Wiro sends every scalar as a string; the models keep the strings as sent (so nothing is lost when
talking to the hosted API) and add typed properties where a number is useful. ``raw`` keeps the
original dict for fields the models do not name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fluxserve.tasks.status import TaskStatus

TERMINAL_STATUSES = frozenset(status.value for status in TaskStatus if status.is_terminal())
"""Once a task shows one of these, polling stops (the seeds' "Completed Task Statuses")."""


def _s(value: Any) -> str:
    """A wire scalar as the string Wiro would send (None -> "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ApiError:
    """One entry of a response's ``errors`` list."""

    code: int
    message: str

    @classmethod
    def from_wire(cls, data: Any) -> ApiError:
        if not isinstance(data, dict):
            return cls(code=0, message=_s(data))
        try:
            code = int(data.get("code", 0))
        except (TypeError, ValueError):
            code = 0
        return cls(code=code, message=_s(data.get("message")))


Error = ApiError
"""The name the issue uses for one ``errors`` entry."""


@dataclass(frozen=True)
class TaskHandle:
    """What ``run`` answers: enough to follow, cancel or kill the task."""

    taskid: str
    socketaccesstoken: str

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> TaskHandle:
        return cls(taskid=_s(data.get("taskid")), socketaccesstoken=_s(data.get("socketaccesstoken")))


@dataclass(frozen=True)
class Output:
    """One file a task produced; ``url`` downloads it with a plain GET."""

    id: str
    name: str
    contenttype: str
    size: str
    url: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Output:
        return cls(
            id=_s(data.get("id")),
            name=_s(data.get("name")),
            contenttype=_s(data.get("contenttype")),
            size=_s(data.get("size")),
            url=_s(data.get("url")),
            raw=dict(data),
        )

    @property
    def size_bytes(self) -> int:
        number = _float(self.size)
        return int(number) if number is not None else 0


@dataclass(frozen=True)
class Task:
    """A task as Task/Detail, Cancel, Kill and List return it."""

    id: str
    uuid: str
    socketaccesstoken: str
    status: str
    parameters: dict[str, Any]
    debugoutput: str
    debugerror: str
    pexit: str
    createtime: str
    starttime: str
    endtime: str
    elapsedseconds: str
    outputs: list[Output]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Task:
        parameters = data.get("parameters")
        return cls(
            id=_s(data.get("id")),
            uuid=_s(data.get("uuid")),
            socketaccesstoken=_s(data.get("socketaccesstoken")),
            status=_s(data.get("status")),
            parameters=dict(parameters) if isinstance(parameters, dict) else {},
            debugoutput=_s(data.get("debugoutput")),
            debugerror=_s(data.get("debugerror")),
            # The seeds' Detail example omits pexit; absent means "no failure reported".
            pexit=_s(data.get("pexit")) or "0",
            createtime=_s(data.get("createtime")),
            starttime=_s(data.get("starttime")),
            endtime=_s(data.get("endtime")),
            elapsedseconds=_s(data.get("elapsedseconds")),
            outputs=[Output.from_wire(item) for item in data.get("outputs") or [] if isinstance(item, dict)],
            raw=dict(data),
        )

    @property
    def handle(self) -> TaskHandle:
        return TaskHandle(taskid=self.id, socketaccesstoken=self.socketaccesstoken)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def failed(self) -> bool:
        return self.pexit.strip() not in ("", "0")

    @property
    def cancelled(self) -> bool:
        return self.status == "task_cancel"

    @property
    def succeeded(self) -> bool:
        return self.status == "task_postprocess_end" and not self.failed

    @property
    def elapsed(self) -> float | None:
        return _float(self.elapsedseconds)


@dataclass(frozen=True)
class TaskList:
    """One page of Task/List: ``total`` counts every task, ``tasks`` holds this page."""

    total: int
    tasks: list[Task]


@dataclass(frozen=True)
class ToolInput:
    """One input of a tool: an item of Tool/Detail's ``parameters`` (Wiro's shape: ``id, type,
    label, description, note, default, required, options, min, max, step``), or an entry of the
    older ``inputs`` list (``name, label, help, type, default, options``)."""

    name: str
    label: str
    help: str
    type: str
    default: Any
    options: list[dict[str, Any]]
    required: bool = False
    min: float | None = None
    max: float | None = None
    step: float | None = None
    note: str = ""

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ToolInput:
        options = data.get("options")
        return cls(
            name=_s(data.get("id") if data.get("id") is not None else data.get("name")),
            label=_s(data.get("label")),
            help=_s(data.get("description") or data.get("help")),
            type=_s(data.get("type")) or "text",
            default=data.get("default"),
            options=[item for item in options if isinstance(item, dict)] if isinstance(options, list) else [],
            required=data.get("required") is True or _s(data.get("required")).lower() == "true",
            min=_float(data.get("min")) if data.get("min") not in (None, "") else None,
            max=_float(data.get("max")) if data.get("max") not in (None, "") else None,
            step=_float(data.get("step")) if data.get("step") not in (None, "") else None,
            note=_s(data.get("note")),
        )

    @property
    def option_values(self) -> list[str]:
        return [_s(option.get("value")) for option in self.options]


@dataclass(frozen=True)
class Tool:
    """A tool, addressed as ``cleanslugowner/cleanslugproject`` (its ``name``, the Run path)."""

    slugowner: str
    slugproject: str
    title: str
    description: str
    cover: str
    categories: list[str]
    inputs: list[ToolInput]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Tool:
        return cls(
            slugowner=_s(data.get("cleanslugowner") or data.get("slugowner")),
            slugproject=_s(data.get("cleanslugproject") or data.get("slugproject")),
            title=_s(data.get("title")),
            description=_s(data.get("seodescription") or data.get("description")),
            cover=_s(data.get("image") or data.get("cover")),
            categories=_string_list(data.get("categories")),
            inputs=[ToolInput.from_wire(item) for item in _parameter_items(data) if isinstance(item, dict)],
            raw=dict(data),
        )

    @property
    def name(self) -> str:
        return f"{self.slugowner}/{self.slugproject}"

    def input(self, name: str) -> ToolInput | None:
        return next((item for item in self.inputs if item.name == name), None)


def _parameter_items(data: dict[str, Any]) -> list[Any]:
    """Every item of every ``parameters`` group, or the older flat ``inputs`` list."""
    groups = data.get("parameters")
    if isinstance(groups, list):
        return [item for group in groups if isinstance(group, dict) for item in group.get("items") or []]
    return list(data.get("inputs") or [])


def _string_list(value: Any) -> list[str]:
    """Categories come as a list, or (in task JSON) as a JSON list inside a string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [_s(item) for item in value]
    return []


@dataclass(frozen=True)
class Progress:
    """What ``wait(on_progress=...)`` reports: a status change or a denoising step.

    Step fields are None when the event carries no step information (a plain status change).
    """

    status: str
    step: int | None = None
    total: int | None = None
    percentage: float | None = None
    speed: float | None = None
    speed_type: str = ""
    elapsed: str = ""
    remaining: str = ""

    @classmethod
    def from_generate(cls, status: str, message: dict[str, Any]) -> Progress:
        """From a ``progressGenerate`` message (all values strings on the wire)."""
        step, total = _int_or_none(message.get("stepCurrent")), _int_or_none(message.get("stepTotal"))
        percentage = _float(message.get("percentage"))
        if percentage is None and step is not None and total:
            percentage = 100.0 * step / total
        return cls(
            status=status,
            step=step,
            total=total,
            percentage=percentage,
            speed=_float(message.get("speed")),
            speed_type=_s(message.get("speedType")),
            elapsed=_s(message.get("elapsedTime")),
            remaining=_s(message.get("remainingTime")),
        )

    @property
    def has_steps(self) -> bool:
        return self.step is not None and self.total is not None


def _int_or_none(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


_STEP_RE = re.compile(r"(\d+)\s*/\s*(\d+)")
_SPEED_RE = re.compile(r"([\d.]+)\s*(it/s|s/it)")


def parse_progress_text(status: str, text: str) -> Progress | None:
    """Best effort on ``debugoutput`` while polling: a progressGenerate JSON, or a tqdm-like line."""
    text = (text or "").strip()
    if not text:
        return None
    line = text.splitlines()[-1].strip()
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        message = None
    if isinstance(message, dict):
        if "stepCurrent" in message or message.get("type") == "progressGenerate":
            return Progress.from_generate(status, message)
        return None
    steps = _STEP_RE.search(line)
    if not steps:
        return None
    speed = _SPEED_RE.search(line)
    step, total = int(steps.group(1)), int(steps.group(2))
    return Progress(
        status=status,
        step=step,
        total=total,
        percentage=100.0 * step / total if total else None,
        speed=_float(speed.group(1)) if speed else None,
        speed_type=speed.group(2) if speed else "",
    )
