"""One worker process: the worker loop, its channel endpoint and its signals.

``process_main`` is what ``fluxserve serve``'s supervisor spawns; ``run_worker`` is also the body
of the standalone ``fluxserve worker``. Importing this module is cheap (the API process imports it
to name the spawn target): torch, the engines and the store are imported inside the functions.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from fluxserve.config import Settings

log = logging.getLogger(__name__)


def process_main(index: int, device: str, torch_threads: int, parent_pid: int) -> None:
    """Entry point of a supervised worker process (runs in a freshly spawned interpreter)."""
    if torch_threads > 0:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(torch_threads)
    settings = Settings(device=device) if device else Settings()
    from fluxserve.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger(__name__).info("worker process %d started (pid %d)", index, os.getpid())
    from fluxserve.worker.priority import apply

    apply(settings.worker_nice)  # before torch starts its threads: they inherit it
    if torch_threads > 0:
        from fluxserve.startup_gc import collector_paused

        with collector_paused():
            import torch

            torch.set_num_threads(torch_threads)
    run_worker(settings, parent_pid=parent_pid, threads=1)


def run_worker(settings: Settings, parent_pid: int | None = None, threads: int | None = None) -> None:
    """Run tasks until SIGTERM/SIGINT (then finish the current ones) or until the parent dies."""
    from fluxserve.startup_gc import collector_paused

    with collector_paused():  # start-up is mostly importing torch & co.: see startup_gc
        from fluxserve.catalog import Catalog
        from fluxserve.channel import open_worker_endpoint
        from fluxserve.engines.registry import EngineRegistry
        from fluxserve.tasks.store import TaskStore
        from fluxserve.tasks.workers import WorkerDirectory
        from fluxserve.worker.capabilities import assess
        from fluxserve.worker.kill import KillWatch
        from fluxserve.worker.runner import Worker, WorkerOptions
        from fluxserve.worker.sending import EventSender

        store = TaskStore.open(settings.resolved_database_url)
        kills = KillWatch(store, fallback_seconds=settings.kill_poll_seconds)
        wake = threading.Event()
        endpoint = open_worker_endpoint(
            settings.resolved_database_url,
            settings.data_dir,
            lambda control: _on_control(control, kills, wake),
        )
        publisher = EventSender(endpoint.send_event)
        catalog, engines = Catalog.builtin(), EngineRegistry(settings.engine_config())
        capabilities = assess(catalog, engines, settings.worker_tools)
        worker = Worker(
            store,
            catalog,
            engines,
            settings.open_storage(),
            publisher,
            WorkerOptions(
                threads=threads or settings.worker_threads,
                lease_seconds=settings.lease_seconds,
                poll_interval=settings.poll_interval_seconds,
                work_dir=settings.data_dir / "work",
                public_url=settings.resolved_public_url,
                preview_every_steps=settings.preview_every_steps,
                max_batch=max(1, settings.max_batch),
                batch_wait_seconds=max(0.0, settings.batch_wait_ms / 1000),
                tools=tuple(capabilities.tools),
                unavailable=capabilities.unavailable,
                device=settings.device,
            ),
            directory=WorkerDirectory(store.engine),
            kills=kills,
            wake=wake,
        )
        signalled = threading.Event()
        now = threading.Event()  # a second signal: stop without waiting for the running task

        def on_signal(*_: object) -> None:
            if signalled.is_set():
                now.set()
            else:
                signalled.set()
                threading.Thread(target=worker.drain, daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        housekeeping = _housekeeping(settings, store, catalog) if parent_pid is None else []
        endpoint.start()
        publisher.start()
        _import_engines()
    worker.start()
    for part in housekeeping:
        part.start()
    while not worker.drained.wait(0.2) and not now.is_set():
        _exit_if_orphaned(parent_pid)
    if now.is_set():
        log.warning("worker %s stopping now; its running task goes back to the queue", worker.worker_id)
        os._exit(1)
    worker.stop()
    for part in housekeeping:
        part.stop()
    publisher.stop()  # the events still queued (the last task's end) go out first
    endpoint.stop()
    store.engine.dispose()
    log.info("worker %s stopped", worker.worker_id)


def _housekeeping(settings: Settings, store, catalog) -> list:
    """What a standalone worker also runs, as it did before the process split: the lease sweeper and
    callback delivery (each callback is claimed by one process, so several senders are safe). A
    supervised worker leaves both to its API process."""
    from fluxserve.errors import NotFoundError
    from fluxserve.net.callbacks import CallbackDispatcher
    from fluxserve.tasks.workers import WorkerDirectory
    from fluxserve.wire import ok_body, task_to_wire
    from fluxserve.worker.recovery import Sweeper

    def render(task) -> dict:
        try:
            tool = catalog.get(task.tool)
        except NotFoundError:
            tool = None
        return ok_body(total="1", tasklist=[task_to_wire(task, settings.resolved_public_url, tool)])

    dispatcher = CallbackDispatcher(
        store,
        render=render,
        delays=settings.callback_delays_seconds,
        timeout=settings.callback_timeout_seconds,
        allow_private=settings.allow_private_urls,
    )
    sweeper = Sweeper(
        store,
        settings.max_attempts,
        interval=max(0.5, settings.lease_seconds / 3),
        on_ended=lambda task_id: dispatcher.wake(),
        directory=WorkerDirectory(store.engine),
    )
    return [sweeper, dispatcher]


def _import_engines() -> None:
    """Import torch, diffusers and transformers before claiming anything.

    That takes seconds (tens on a busy machine); done lazily it would hold a claimed task while an
    idle sibling worker could have run it. Loading weights stays lazy (per tool, on first use).
    """
    try:
        import diffusers
        import torch  # noqa: F401
        import transformers

        for name in ("FluxPipeline", "FluxKontextPipeline", "AutoencoderKL", "FluxTransformer2DModel"):
            getattr(diffusers, name)
        for name in ("CLIPTextModel", "CLIPTokenizer", "T5EncoderModel", "T5TokenizerFast"):
            getattr(transformers, name)
    except Exception:  # reported properly when a task needs them
        log.warning("could not import the inference libraries ahead of time", exc_info=True)


def _on_control(control, kills, wake: threading.Event) -> None:
    if control.kind == "kill":
        kills.request(control.task_id)
    elif control.kind == "wake":
        wake.set()


def _exit_if_orphaned(parent_pid: int | None) -> None:
    """The supervising process died (e.g. SIGKILL): stop at once, as it would have stopped us."""
    if parent_pid is not None and os.getppid() != parent_pid:
        log.error("supervisor (pid %s) is gone; worker exiting", parent_pid)
        os._exit(1)
