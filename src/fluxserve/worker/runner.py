"""The worker loop: claim a task, walk it through its statuses, run its engine, store its outputs."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from fluxserve.catalog import Catalog, ToolSpec
from fluxserve.catalog.images import ImageRef, image_refs
from fluxserve.engines.base import BatchItem, EngineJob, GeneratedImage, GenerationResult
from fluxserve.engines.registry import EngineRegistry
from fluxserve.errors import ClientError, TaskFailure, TaskKilled
from fluxserve.logs import task_context
from fluxserve.storage import Storage
from fluxserve.tasks.ends import publish_end
from fluxserve.tasks.events import PREVIEW_EVENT, EventSink, TaskEvent
from fluxserve.tasks.records import PREVIEWS_INPUT, NewOutput, TaskRecord
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore, random_token
from fluxserve.tasks.workers import WorkerDirectory
from fluxserve.worker.batching import EndOnKill, Member, batch_groups, claim_batch, running
from fluxserve.worker.kill import KillWatch
from fluxserve.worker.lease import LeaseKeeper, new_worker_id
from fluxserve.worker.presence import Presence, describe_worker
from fluxserve.worker.progress import (
    Preview,
    StepProgress,
    ThrottledWrite,
    preview_policy,
    progress_text,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    threads: int = 1
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    work_dir: Path = Path("./data/work")
    public_url: str = "http://127.0.0.1:8000"  # base of the output URLs in task_postprocess_end events
    preview_every_steps: int = 0  # latent previews for every task (0: only for tasks that ask)
    tools: tuple[str, ...] | None = None  # the tools this worker claims (None: every catalog tool)
    unavailable: dict[str, str] = field(default_factory=dict)  # tool -> why not (for the directory)
    device: str = "auto"
    max_batch: int = 1  # compatible tasks claimed and run together (FLUXSERVE_MAX_BATCH)
    batch_wait_seconds: float = 0.0  # how long an idle queue is watched for company (FLUXSERVE_BATCH_WAIT_MS)


CLAIMED_AT = TaskStatus.PREPROCESS_START
"""The status a claimed task is in once the claim's write is done. task_accept, task_assign and
task_preprocess_start follow each other at once in a worker, so the claim stamps all three (one
write per task instead of two); their socket frames are still sent one by one."""
CLAIM_STATUSES = (TaskStatus.ACCEPT, TaskStatus.ASSIGN, TaskStatus.PREPROCESS_START)


class _Lost(Exception):
    """This worker no longer owns the task (its lease lapsed and someone else took it)."""


class Worker:
    """Runs tasks from the store on ``options.threads`` threads; engines are shared between them."""

    def __init__(
        self,
        store: TaskStore,
        catalog: Catalog,
        engines: EngineRegistry,
        storage: Storage,
        events: EventSink,
        options: WorkerOptions,
        directory: WorkerDirectory | None = None,
        kills: KillWatch | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        """``kills`` hears kill requests from the event channel; ``wake`` is set by whoever learns
        that a task was queued (the channel), ending an idle wait."""
        self.store = store
        self.catalog = catalog
        self.engines = engines
        self.storage = storage
        self.events = events
        self.options = options
        self.kills = kills or KillWatch(store)
        self.worker_id = new_worker_id()
        self._leases = LeaseKeeper(store, self.worker_id, options.lease_seconds)
        self._project_name = _ProjectNames(store)
        self._stop = threading.Event()
        self._wake = wake or threading.Event()
        self._threads: list[threading.Thread] = []
        self._draining = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self.drained = threading.Event()  # set when draining and no task is running any more
        self.presence = (
            Presence(
                directory,
                describe_worker(
                    self.worker_id, options.device, self._tools(), options.unavailable, options.threads
                ),
                interval=max(0.5, options.lease_seconds / 3),
                on_drain=self.drain,
            )
            if directory is not None
            else None
        )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._leases.start()
        if self.presence:
            self.presence.start()
        for index in range(self.options.threads):
            thread = threading.Thread(target=self._loop, name=f"fluxserve-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("worker %s started with %d thread(s)", self.worker_id, self.options.threads)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._leases.stop()
        if self.presence:
            self.presence.stop()

    def drain(self) -> None:
        """Claim nothing more; ``drained`` is set once the running tasks have ended."""
        log.info("worker %s draining: finishing running tasks, claiming no more", self.worker_id)
        self._draining.set()
        self._wake.set()
        self._check_drained()

    def _check_drained(self) -> None:
        with self._busy_lock:
            if self._draining.is_set() and self._busy == 0:
                self.drained.set()

    def wake(self) -> None:
        """A task was queued: skip the rest of the idle wait."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set() and not self._draining.is_set():
            try:
                worked = self.run_once()
            except Exception:  # the store itself failed; back off and keep the worker alive
                log.exception("worker loop error")
                worked = False
            if not worked:
                self._wake.wait(self.options.poll_interval)
                self._wake.clear()

    def run_once(self) -> bool:
        """Claim and run one task, or a batch of compatible ones; False when the queue was empty."""
        with self._busy_lock:
            if self._draining.is_set():
                return False
            self._busy += 1
        try:
            tasks = claim_batch(
                self.store,
                self.worker_id,
                self.options.lease_seconds,
                self._tools(),
                self.options.max_batch,
                self.options.batch_wait_seconds,
                through=CLAIMED_AT,
            )
            if not tasks:
                return False
            for task in tasks:
                self._leases.hold(task.id)
                self.kills.forget(task.id)  # a request for an earlier attempt is not for this one
            try:
                self._run_tasks(tasks)
            finally:
                for task in tasks:
                    self._leases.release(task.id)
                    self.kills.forget(task.id)
            return True
        finally:
            with self._busy_lock:
                self._busy -= 1
            self._check_drained()

    def _tools(self) -> list[str]:
        if self.options.tools is not None:
            return list(self.options.tools)
        return [tool.tool for tool in self.catalog]

    # --- running claimed tasks -----------------------------------------------------------

    def _run_tasks(self, tasks: list[TaskRecord]) -> None:
        """Preprocess the claimed tasks, then generate: each alone, or together with the tasks its
        engine can batch it with (equal ``batch_signature``)."""
        members = self._prepare(tasks)
        try:
            for group in batch_groups(members, max_rows=self.options.max_batch):
                if len(group) == 1:
                    self._generate_alone(group[0])
                else:
                    self._generate_together(group)
        finally:
            for member in members:
                shutil.rmtree(member.workdir, ignore_errors=True)

    def _prepare(self, tasks: list[TaskRecord]) -> list[Member]:
        """task_accept .. task_start: each task's job built and preprocessed (or the task ended).
        The claim itself took the tasks to task_preprocess_start (:data:`CLAIMED_AT`); the move to
        task_start is one write for every task of a batch."""
        members = [self._member(task) for task in tasks]  # claimed through task_preprocess_start
        for member in running(members):
            with self._ending(member):
                spec = self.catalog.get(member.task.tool)
                member.engine = self.engines.get(spec.engine)
                member.workdir.mkdir(parents=True, exist_ok=True)
                member.job = EngineJob(
                    task_id=member.task.taskid,
                    tool=member.task.tool,
                    params={k: v for k, v in member.task.inputs.items() if k != PREVIEWS_INPUT},
                    images=self._images(spec, member.task, member.workdir / "inputs"),
                    workdir=member.workdir,
                    should_stop=member.is_killed,
                )
                member.prepared = member.engine.preprocess(member.job)
                member.progress.check_killed()
        self._advance_all(running(members), TaskStatus.START, passing=(TaskStatus.PREPROCESS_END,))
        return members

    def _member(self, task: TaskRecord) -> Member:
        project = self._project_name(task)
        with task_context(task.id, project, task.tool):
            log.info("task %s (%s) claimed, attempt %d", task.id, task.tool, task.attempts)
        for status in CLAIM_STATUSES:
            self._publish(task, status)
        reporter = _Reporter(self, task)
        is_killed = self.kills.checker(task.id)  # in memory; the store's flag once a second at most
        progress = StepProgress(
            is_killed=is_killed,
            report=reporter.progress,
            preview=preview_policy(task.inputs, self.options.preview_every_steps, reporter.preview),
        )
        is_killed.current_step = lambda: progress.step
        member = Member(task, self.options.work_dir / task.uuid, is_killed, progress)
        member.project = project
        return member

    def _generate_alone(self, member: Member) -> None:
        result = None
        with self._ending(member):
            result = member.engine.generate(member.job, member.prepared, member.progress)
        if result is not None:
            self._complete([(member, result)])

    def _generate_together(self, group: list[Member]) -> None:
        """One batched engine call. A member killed mid-way is ended (task_cancel) at that step,
        the others go on; if the batched call fails as a whole, each member runs alone instead
        (e.g. a batch too big for the GPU's memory still gets its tasks done)."""
        ids = ", ".join(str(member.task.id) for member in group)
        log.info("running tasks %s in one batch", ids)
        items = [
            BatchItem(member.job, member.prepared, EndOnKill(member.progress, self._ender(member)))
            for member in group
        ]
        try:
            results = group[0].engine.generate_batch(items)
        except Exception as exc:
            log.warning("the batch of tasks %s failed (%s); running them one at a time", ids, exc)
            for member in running(group):
                self._generate_alone(member)
            return
        note = f"ran in one batch with {len(group) - 1} other task(s)"
        done = []
        for member, result in zip(group, results, strict=True):
            if member.ended:
                continue
            with self._ending(member):
                if isinstance(result, BaseException):
                    raise result
                result.debugoutput = f"{result.debugoutput}; {note}" if result.debugoutput else note
                done.append((member, result))
        self._complete(done)

    def _ender(self, member: Member) -> Callable[[BaseException], None]:
        """Ends ``member`` now with what its step callback raised (a kill: task_cancel)."""

        def end(exc: BaseException) -> None:
            with self._ending(member):
                raise exc

        return end

    def _complete(self, done: list[tuple[Member, GenerationResult]]) -> None:
        """task_output .. task_postprocess_end: store each task's images and end it."""
        for member, _ in done:
            with self._ending(member):
                member.progress.check_killed()
        done = [(member, result) for member, result in done if not member.ended]
        self._advance_all([member for member, _ in done], TaskStatus.OUTPUT)
        for member, result in done:
            if member.ended:
                continue
            with self._ending(member):
                task = member.task
                outputs = [self._store_image(task, index, image) for index, image in enumerate(result.images)]
                self._finish(
                    task, TaskStatus.POSTPROCESS_END, debugoutput=result.debugoutput, outputs=outputs
                )
                member.ended = True

    def _advance_all(
        self, members: list[Member], status: TaskStatus, passing: tuple[TaskStatus, ...] = ()
    ) -> None:
        """Move every member to ``status`` in one write, an event for each step; a member that did
        not move is no longer this worker's."""
        moved = self.store.advance_many([m.task.id for m in members], self.worker_id, status, passing)
        for member in members:
            if member.task.id in moved:
                for step in (*passing, status):
                    self._publish(member.task, step)
            else:
                with self._ending(member):
                    raise _Lost

    @contextlib.contextmanager
    def _ending(self, member: Member) -> Iterator[None]:
        """Runs a stage of ``member`` in its log context; what it raises ends the task (kill:
        task_cancel, failure: pexit 1) and marks the member ended."""
        task = member.task
        with task_context(task.id, member.project, task.tool):
            try:
                yield
            except TaskKilled as exc:
                member.ended = True
                arrived = member.is_killed.arrived_after_step
                note = "" if arrived is None else f" The request reached this worker after step {arrived}."
                self._finish(task, TaskStatus.CANCEL, debugoutput=f"Killed by request ({exc}).{note}")
            except _Lost:
                member.ended = True
                log.warning("task %s was taken away from this worker; dropping it", task.id)
            except (TaskFailure, ClientError) as exc:
                member.ended = True
                self._fail(task, str(exc))
            except Exception as exc:
                member.ended = True
                log.exception("task %s failed unexpectedly", task.id)
                self._fail(task, f"Internal error while running the task ({type(exc).__name__}: {exc}).")

    def _images(self, tool: ToolSpec, task: TaskRecord, scratch: Path) -> dict[str, ImageRef]:
        """The task's image references, stored files with a local path (fetched from an object store
        if need be)."""
        refs = image_refs(tool, task.inputs, task.files)
        try:
            return {
                name: replace(ref, path=self.storage.fetch(ref.storage_key, scratch)) if ref.stored else ref
                for name, ref in refs.items()
            }
        except FileNotFoundError as exc:
            raise TaskFailure(f"An uploaded input file is no longer stored ({exc}).") from exc

    def _fail(self, task: TaskRecord, message: str) -> None:
        log.info("task %s failed: %s", task.id, message)
        self._finish(task, TaskStatus.POSTPROCESS_END, pexit="1", debugerror=message, debugoutput="")

    def _finish(self, task: TaskRecord, status: TaskStatus, **fields) -> None:
        final = self.store.finish(task.id, self.worker_id, status=status, **fields)
        if final is None:
            log.warning("task %s: could not record its end (no longer owned by this worker)", task.id)
            return
        publish_end(self.events, final, self.options.public_url)  # the same frames as every other end
        log.info("task %s ended: %s pexit=%s", task.id, status.value, final.pexit)

    def _publish(self, task: TaskRecord, status: TaskStatus) -> None:
        self.events.publish(TaskEvent(task.taskid, task.token, status.value, ""))

    def _store_image(self, task: TaskRecord, index: int, image: GeneratedImage) -> NewOutput:
        name = f"{index}.{image.extension}"
        key = f"outputs/{task.uuid}/{name}"
        self.storage.put(key, image.data)
        return NewOutput(
            name=name,
            contenttype=image.content_type,
            size=len(image.data),
            storage_key=key,
            accesskey=random_token(),
        )


class _Reporter:
    """Publishes one task's progress and previews, and keeps both in its debugoutput.

    While the task runs, debugoutput is the progressGenerate line; with previews on it also
    carries ``"preview": "data:image/jpeg;base64,…"``, the latest preview, for Detail readers.
    """

    def __init__(self, worker: Worker, task: TaskRecord) -> None:
        self._worker = worker
        self._task = task
        self._progress: dict[str, str] = {}
        self._preview = ""
        store, worker_id = worker.store, worker.worker_id
        self._writes = ThrottledWrite(lambda text: store.set_debugoutput(task.id, worker_id, text))

    def progress(self, message: dict[str, str]) -> None:
        self._progress = message
        self._store()
        event = TaskEvent(self._task.taskid, self._task.token, "task_output", message, droppable=True)
        self._worker.events.publish(event)

    def preview(self, preview: Preview) -> None:
        self._preview = preview.data_url()
        self._store(force=True)
        event = TaskEvent(
            self._task.taskid, self._task.token, PREVIEW_EVENT, preview.message(), droppable=True
        )
        self._worker.events.publish(event)

    def _store(self, force: bool = False) -> None:
        line = {**self._progress, "preview": self._preview} if self._preview else self._progress
        if line:
            self._writes.offer(progress_text(line), force)


class _ProjectNames:
    """For log lines: a project's name (its id if it cannot be read), read from the store at most
    once a minute per project — a rename shows in the logs within a minute, and a worker running
    short tasks does not pay a query per task for it."""

    TTL_SECONDS = 60.0

    def __init__(self, store: TaskStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._names: dict[int, tuple[float, str]] = {}

    def __call__(self, task: TaskRecord) -> str:
        now = self._clock()
        cached = self._names.get(task.project_id)
        if cached and now - cached[0] < self.TTL_SECONDS:
            return cached[1]
        try:
            project = self._store.projects.by_id(task.project_id)
        except Exception:  # logging context only; never fail a task over it
            project = None
        name = project.name if project else str(task.project_id)
        if len(self._names) > 1000:
            self._names.clear()
        self._names[task.project_id] = (now, name)
        return name
