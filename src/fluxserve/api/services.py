"""What the API needs, built by the entry point and handed to create_app (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from fluxserve.api.cluster import ClusterView
from fluxserve.api.projects import ProjectCache
from fluxserve.api.task_cache import TaskCache
from fluxserve.catalog import Catalog
from fluxserve.catalog.model import ToolSpec
from fluxserve.errors import NotFoundError
from fluxserve.storage import Storage
from fluxserve.tasks.events import EventBus
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore
from fluxserve.wire import ok_body, task_to_wire

_MAX_DETAILS = 10_000  # encoded Detail answers kept (the task cache holds the records themselves)


def _always_available(_engine: str) -> str | None:
    return None


@dataclass
class ApiServices:
    store: TaskStore
    catalog: Catalog
    storage: Storage
    events: EventBus
    public_url: str
    availability: Callable[[str], str | None] = _always_available  # engine name -> reason it can't run
    on_task_queued: Callable[[], None] = lambda: None  # wakes idle workers (over the event channel)
    on_kill_requested: Callable[[int], None] = lambda task_id: None  # tells the task's worker at once
    nonce_max_age_seconds: int = 3600
    max_upload_bytes: int = 50 * 2**20
    kill_wait_seconds: float = 10.0
    max_queued_tasks: int = 0  # 0 = no limit
    max_task_pixels: int = 0  # width x height x samples; 0 = no limit
    openai_wait_seconds: float = 600.0  # bounded wait of /v1/images/* for their task(s)
    cluster: ClusterView | None = None  # the worker directory's view (waiting notes, health counts)
    live_poll_seconds: float = 1.0  # fallback store read of a live follower that heard nothing
    project_cache_seconds: float = 5.0  # a changed key/secret takes effect within this time
    projects_marker: Path | None = None  # touched by `fluxserve project`: drop cached keys at once
    projects: ProjectCache = field(init=False)
    tasks: TaskCache = field(init=False)  # Detail's reads, dropped by every event of their task
    _details: dict[int, tuple[TaskRecord, bytes]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.projects = ProjectCache(self.store, self.project_cache_seconds, self.projects_marker)
        self.tasks = TaskCache(self.store, live_seconds=self.live_poll_seconds)

    def detail_json(self, task: TaskRecord) -> bytes:
        """Task/Detail's answer for ``task``, encoded; kept while the task cache hands out the same
        record (a repeated poll of an unchanged task), so it is rendered once per change.

        A queued task is rendered every time: its waiting note follows the workers, not the task.
        """
        memo = self._details.get(task.id)
        if memo is not None and memo[0] is task:
            return memo[1]
        encoded = orjson.dumps(ok_body(total="1", tasklist=[self.task_json(task)]))
        if task.status is not TaskStatus.QUEUE:
            if len(self._details) >= _MAX_DETAILS:
                self._details.clear()
            self._details[task.id] = (task, encoded)
        return encoded

    def tool_of(self, task: TaskRecord) -> ToolSpec | None:
        try:
            return self.catalog.get(task.tool)
        except NotFoundError:  # a tool removed from the catalog since the task ran
            return None

    def task_json(self, task: TaskRecord) -> dict:
        body = task_to_wire(task, self.public_url, self.tool_of(task))
        if task.status is TaskStatus.QUEUE and self.cluster is not None:
            note = self.cluster.waiting_note(task.tool)
            if note:
                body["debugoutput"] = "\n".join(part for part in (body["debugoutput"], note) if part)
        return body
