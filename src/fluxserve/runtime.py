"""Assembles a running fluxserve from Settings: store, catalog, storage, events, worker, sweeper,
callback delivery and the API app. Entry points (cli.py, tests) call this; nothing else does."""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field

from fluxserve.api import ApiServices, create_app
from fluxserve.api.cluster import ClusterView
from fluxserve.catalog import Catalog
from fluxserve.config import Settings
from fluxserve.engines.registry import EngineRegistry
from fluxserve.net.callbacks import CallbackDispatcher
from fluxserve.storage import Storage
from fluxserve.tasks.ends import publish_end
from fluxserve.tasks.events import InProcessEventBus
from fluxserve.tasks.store import TaskStore, random_token
from fluxserve.tasks.workers import WorkerDirectory
from fluxserve.wire import ok_body
from fluxserve.worker.capabilities import assess
from fluxserve.worker.recovery import Sweeper
from fluxserve.worker.runner import Worker, WorkerOptions

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


@dataclass
class Runtime:
    settings: Settings
    store: TaskStore
    catalog: Catalog
    storage: Storage
    events: InProcessEventBus
    engines: EngineRegistry
    credentials: Credentials
    services: ApiServices
    directory: WorkerDirectory
    worker: Worker | None = None
    background: list = field(default_factory=list)

    def start_background(self, with_worker: bool) -> None:
        """Start the sweeper, the callback dispatcher and (if asked) the in-process worker."""
        dispatcher = CallbackDispatcher(
            self.store,
            render=lambda task: ok_body(total="1", tasklist=[self.services.task_json(task)]),
            delays=self.settings.callback_delays_seconds,
            timeout=self.settings.callback_timeout_seconds,
            allow_private=self.settings.allow_private_urls,
        )
        sweeper = Sweeper(
            self.store,
            self.settings.max_attempts,
            interval=max(0.5, self.settings.lease_seconds / 3),
            on_ended=lambda task_id: self._announce_recovered_end(task_id, dispatcher),
            directory=self.directory,
        )
        self.background = [sweeper, dispatcher]
        if with_worker and self.settings.workers > 0:
            capabilities = assess(self.catalog, self.engines, self.settings.worker_tools)
            self.worker = Worker(
                self.store,
                self.catalog,
                self.engines,
                self.storage,
                self.events,
                WorkerOptions(
                    threads=self.settings.workers,
                    lease_seconds=self.settings.lease_seconds,
                    poll_interval=self.settings.poll_interval_seconds,
                    work_dir=self.settings.data_dir / "work",
                    public_url=self.settings.resolved_public_url,
                    preview_every_steps=self.settings.preview_every_steps,
                    tools=tuple(capabilities.tools),
                    unavailable=capabilities.unavailable,
                    device=self.settings.device,
                ),
                directory=self.directory,
            )
            self.background.append(self.worker)
            self.services.on_task_queued = self.worker.wake
        for part in self.background:
            part.start()

    def _announce_recovered_end(self, task_id: int, dispatcher: CallbackDispatcher) -> None:
        """The sweeper ended a task whose worker died: tell live followers and the callback sender."""
        publish_end(self.events, self.store.get(task_id), self.services.public_url)
        dispatcher.wake()

    def stop_background(self) -> None:
        for part in reversed(self.background):
            part.stop()

    def app(self):
        return create_app(self.services)


def build_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = TaskStore.open(settings.resolved_database_url)
    credentials = load_credentials(settings)
    store.ensure_project(
        credentials.api_key, credentials.api_secret, settings.require_signature, bootstrap=True
    )
    catalog = Catalog.builtin()
    storage = settings.open_storage()
    events = InProcessEventBus()
    engines = EngineRegistry(settings.engine_config())
    directory = WorkerDirectory(store.engine)
    cluster = ClusterView(directory, catalog, local_reason=engines.unavailable_reason)
    services = ApiServices(
        store=store,
        catalog=catalog,
        storage=storage,
        events=events,
        public_url=settings.resolved_public_url,
        availability=cluster.availability,
        cluster=cluster,
        nonce_max_age_seconds=settings.nonce_max_age_seconds,
        max_upload_bytes=settings.max_upload_bytes,
        kill_wait_seconds=settings.kill_wait_seconds,
        max_queued_tasks=settings.max_queued_tasks,
        max_task_pixels=settings.max_task_pixels,
        openai_wait_seconds=settings.openai_wait_seconds,
    )
    return Runtime(settings, store, catalog, storage, events, engines, credentials, services, directory)
