"""Plain dataclasses the store hands out; nothing outside tasks/ sees a SQL row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fluxserve.tasks.status import TaskStatus

PREVIEWS_INPUT = "_previews"
"""Reserved key in a task's ``inputs`` (never in its wire ``parameters``): how many latent
previews the request asked for over the whole run (OpenAI's ``partial_images``). Set by the API,
read by the worker."""


@dataclass(frozen=True)
class Project:
    """A tenant: its credentials, limits and webhook signing secret.

    ``max_concurrent`` 0 means no limit; ``allowed_ips`` empty (or containing ``*``) allows any
    address. ``bootstrap`` marks the project whose credentials come from the settings.
    """

    id: int
    name: str
    api_key: str
    api_secret: str
    require_signature: bool
    max_concurrent: int = 0
    allowed_ips: tuple[str, ...] = ()
    webhook_secret: str = ""
    bootstrap: bool = False
    createtime: float = 0.0


@dataclass(frozen=True)
class OutputRecord:
    id: str
    task_id: int
    position: int
    name: str
    contenttype: str
    size: int
    parentid: str
    accesskey: str
    storage_key: str
    addedtime: float
    modifiedtime: float


@dataclass(frozen=True)
class UploadRecord:
    """A file a client uploaded (with a Run request or through File/Upload)."""

    id: int
    project_id: int
    name: str
    contenttype: str
    size: int
    accesskey: str
    storage_key: str
    addedtime: float


@dataclass(frozen=True)
class NewOutput:
    """An output the worker has stored and wants attached to its task."""

    name: str
    contenttype: str
    size: int
    storage_key: str
    accesskey: str


@dataclass
class TaskRecord:
    id: int
    uuid: str
    token: str
    project_id: int
    tool: str
    inputs: dict[str, Any]
    parameters: dict[str, Any]
    files: dict[str, str]
    status: TaskStatus
    debugoutput: str
    debugerror: str
    pexit: str
    callbackurl: str
    times: dict[str, float]
    attempts: int
    kill_requested: bool
    worker_id: str
    lease_expires_at: float
    callback_state: str
    callback_attempts: int
    outputs: list[OutputRecord] = field(default_factory=list)
    batch_key: str = ""  # tasks with equal non-empty keys may run in one batch (catalog/batching.py)

    @property
    def taskid(self) -> str:
        return str(self.id)
