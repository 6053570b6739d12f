"""Assembles the API process from Settings: store, catalog, storage, the event bus and its channel
to the workers, the sweeper, callback delivery, the worker supervisor and the API app.

Entry points (cli.py, benches) call this; nothing else does. Nothing here imports torch or an
engine: workers are separate processes (fluxserve.supervisor, fluxserve.worker.process).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from fluxserve.api import ApiServices, create_app
from fluxserve.api.cluster import ClusterView
from fluxserve.catalog import Catalog
from fluxserve.channel import ApiEndpoint, Control, Listening, open_api_endpoint, project_changes
from fluxserve.config import Settings
from fluxserve.net.callbacks import CallbackDispatcher
from fluxserve.storage import Storage
from fluxserve.supervisor import Supervisor, worker_specs
from fluxserve.tasks.ends import publish_end
from fluxserve.tasks.events import InProcessEventBus, Listener, TaskEvent
from fluxserve.tasks.projects import changes_marker
from fluxserve.tasks.store import TaskStore, random_token
from fluxserve.tasks.workers import WorkerDirectory
from fluxserve.wire import ok_body
from fluxserve.worker.lease import local_worker_prefix
from fluxserve.worker.recovery import Sweeper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str
    generated: bool = False


def load_credentials(settings: Settings) -> Credentials:
    """The first project's key and secret: from settings, else generated once and kept in the data dir."""
    if settings.api_key:
        return Credentials(settings.api_key, settings.api_secret)
    path = settings.data_dir / "credentials.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        return Credentials(stored["api_key"], stored["api_secret"])
    credentials = Credentials(random_token(32), secrets.token_hex(24), generated=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"api_key": credentials.api_key, "api_secret": credentials.api_secret}, handle)
    return credentials


class SharedEventBus:
    """The API process's EventBus: local followers, plus the other API processes over the channel.

    Events heard from the channel go to :meth:`deliver` (local only); events decided here (a
    Cancel, a sweeper's end) go to :meth:`publish` and are also shared.
    """

    def __init__(self) -> None:
        self.local = InProcessEventBus()
        self.endpoint: ApiEndpoint | None = None
        self.on_change: Callable[[str], None] = lambda token: None  # the task cache's invalidate

    def publish(self, event: TaskEvent) -> None:
        self.on_change(event.token)
        self.local.publish(event)
        if self.endpoint is not None:
            self.endpoint.share_event(event)

    def deliver(self, event: TaskEvent) -> None:
        self.on_change(event.token)
        self.local.publish(event)

    def subscribe(self, token: str, listener: Listener):
        return self.local.subscribe(token, listener)

    def listener_count(self, token: str) -> int:
        return self.local.listener_count(token)


@dataclass
class Runtime:
    settings: Settings
    store: TaskStore
    catalog: Catalog
    storage: Storage
    events: SharedEventBus
    channel: ApiEndpoint
    credentials: Credentials
    services: ApiServices
    directory: WorkerDirectory
    supervisor: Supervisor | None = None
    sweeper: Sweeper | None = None
    background: list = field(default_factory=list)
    project_listener: Listening | None = None  # PostgreSQL: projects changed on any machine

    def start_background(self, with_workers: bool = True) -> None:
        """Start the channel, the sweeper, the callback dispatcher and (if asked) the worker processes."""
        self.channel.start()
        self.events.endpoint = self.channel
        self.project_listener = project_changes(
            self.settings.resolved_database_url, self.services.projects.clear
        )
        if self.project_listener is not None:
            self.project_listener.start()
        dispatcher = CallbackDispatcher(
            self.store,
            render=lambda task: ok_body(total="1", tasklist=[self.services.task_json(task)]),
            delays=self.settings.callback_delays_seconds,
            timeout=self.settings.callback_timeout_seconds,
            allow_private=self.settings.allow_private_urls,
        )
        self.sweeper = Sweeper(
            self.store,
            self.settings.max_attempts,
            interval=max(0.5, self.settings.lease_seconds / 3),
            on_ended=lambda task_id: self._announce_recovered_end(task_id, dispatcher),
            directory=self.directory,
        )
        self.background = [self.sweeper, dispatcher]
        for part in self.background:
            part.start()
        specs = worker_specs(self.settings) if with_workers else []
        if specs:
            self.supervisor = Supervisor(specs, on_exit=self._recover_worker)
            self.supervisor.start()

    def _recover_worker(self, pid: int) -> None:
        """A worker process died: its task goes back to the queue now, not when its lease lapses."""
        if self.store.expire_leases_of(local_worker_prefix(pid)) and self.sweeper is not None:
            self.sweeper.sweep_once()

    def _announce_recovered_end(self, task_id: int, dispatcher: CallbackDispatcher) -> None:
        """The sweeper ended a task whose worker died: tell live followers and the callback sender."""
        publish_end(self.events, self.store.get(task_id), self.services.public_url)
        dispatcher.wake()

    def stop_background(self) -> None:
        """Drain the workers (each finishes its task), then stop the rest."""
        if self.supervisor is not None:
            self.supervisor.stop(self.settings.drain_seconds)
        for part in reversed(self.background):
            part.stop()
        if self.project_listener is not None:
            self.project_listener.stop()
        self.channel.stop()

    def app(self):
        return create_app(self.services)


def build_runtime(settings: Settings) -> Runtime:
    from fluxserve.engines.registry import EngineRegistry  # availability checks only: no torch

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = TaskStore.open(settings.resolved_database_url)
    credentials = load_credentials(settings)
    store.ensure_project(
        credentials.api_key, credentials.api_secret, settings.require_signature, bootstrap=True
    )
    catalog = Catalog.builtin()
    storage = settings.open_storage()
    events = SharedEventBus()
    directory = WorkerDirectory(store.engine)
    cluster = ClusterView(
        directory, catalog, local_reason=EngineRegistry(settings.engine_config()).unavailable_reason
    )
    channel = open_api_endpoint(settings.resolved_database_url, settings.data_dir, events.deliver)
    services = ApiServices(
        store=store,
        catalog=catalog,
        storage=storage,
        events=events,
        public_url=settings.resolved_public_url,
        availability=cluster.availability,
        cluster=cluster,
        on_task_queued=lambda: channel.send_control(Control("wake")),
        on_kill_requested=lambda task_id: channel.send_control(Control("kill", task_id)),
        projects_marker=changes_marker(settings.data_dir),
        nonce_max_age_seconds=settings.nonce_max_age_seconds,
        max_upload_bytes=settings.max_upload_bytes,
        kill_wait_seconds=settings.kill_wait_seconds,
        max_queued_tasks=settings.max_queued_tasks,
        max_task_pixels=settings.max_task_pixels,
        openai_wait_seconds=settings.openai_wait_seconds,
        live_poll_seconds=settings.live_poll_seconds,
        project_cache_seconds=settings.project_cache_seconds,
    )
    events.on_change = services.tasks.invalidate
    return Runtime(settings, store, catalog, storage, events, channel, credentials, services, directory)
