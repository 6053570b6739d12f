"""The ``fluxserve`` command: serve | worker | pull | make-tiny, plus the client commands."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fluxserve.config import Settings

app = typer.Typer(
    help="fluxserve: a self-hosted, Wiro-compatible task API for FLUX image models.", no_args_is_help=True
)


def load_settings() -> Settings:
    """The FLUXSERVE_* settings, or a one-line error naming the bad variable and exit status 2."""
    from fluxserve.config import SettingsError
    from fluxserve.config import load_settings as load

    try:
        return load()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _configure_logging(level: str, fmt: str = "text") -> None:
    from fluxserve.logs import configure_logging

    configure_logging(level, fmt)


@app.command()
def serve() -> None:
    """Start the HTTP API and supervise FLUXSERVE_WORKERS worker processes (settings from FLUXSERVE_*)."""
    import signal

    from fluxserve.startup_gc import collector_paused

    with collector_paused():
        import uvicorn

        from fluxserve.runtime import build_runtime

        settings = load_settings()
        _configure_logging(settings.log_level, settings.log_format)
        if settings.workers > 0 or settings.devices:
            _check_worker_priority(settings.worker_nice)
        runtime = build_runtime(settings)
        app = runtime.app()
    _announce(runtime)
    runtime.start_background()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            access_log=settings.access_log,
            log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
            timeout_graceful_shutdown=10,  # open SSE streams (/v1/Task/Events) must not block a stop
        )
    )
    # uvicorn re-raises the signal that stopped it once it is done; with these handlers in place
    # that only lands here, so the workers are drained below instead of the process dying at once.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    _lower_priority_of_this_thread(settings.api_nice)
    try:
        server.run()
    finally:
        runtime.stop_background()


def _lower_priority_of_this_thread(nice: int) -> None:
    """Nice the HTTP thread (and the request threads it starts) but not the worker processes.

    On Linux niceness is per thread: the worker processes (spawned earlier, and re-spawned by the
    supervisor's own thread) keep theirs, so when clients flood the API with polls on a busy box the
    generation they wait for keeps its CPU share.
    """
    import logging
    import os
    import threading

    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        logging.getLogger(__name__).warning("could not lower the API thread's priority", exc_info=True)


def _check_worker_priority(nice: int) -> None:
    """Stop with a clear error, before any worker starts, if FLUXSERVE_WORKER_NICE cannot be applied
    (a supervised worker refused it would die and be restarted forever)."""
    from fluxserve.worker import priority

    try:
        priority.check(nice)
    except priority.PriorityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def worker() -> None:
    """Run one worker against the shared database (no HTTP API).

    SIGTERM or SIGINT drains: no new claims, running tasks finish, then the process exits (a second
    signal stops at once; the unfinished task is re-queued when its lease lapses). So does
    ``fluxserve workers drain <id>`` from any machine.
    """
    from fluxserve.worker.priority import apply
    from fluxserve.worker.process import run_worker

    settings = load_settings()
    _configure_logging(settings.log_level, settings.log_format)
    _check_worker_priority(settings.worker_nice)
    apply(settings.worker_nice)
    run_worker(settings)


@app.command()
def workers(
    drain: Annotated[
        list[str] | None,
        typer.Option(help="Drain these workers (id, or host name for all its workers), then list."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the registered workers (live, draining, lost), what they run and their last heartbeat."""
    import json
    import time

    from fluxserve.tasks.store import TaskStore
    from fluxserve.tasks.workers import WorkerDirectory
    from fluxserve.worker.listing import worker_json, worker_lines

    settings = load_settings()
    directory = WorkerDirectory(TaskStore.open(settings.resolved_database_url).engine)
    if drain:
        drained = directory.drain(drain)
        if not drained:
            typer.echo(f"error: no worker matches {', '.join(drain)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"draining: {', '.join(drained)}", err=True)
    rows, now = directory.all(), time.time()
    if as_json:
        typer.echo(json.dumps([worker_json(row, now) for row in rows], indent=1))
    else:
        for line in worker_lines(rows, now):
            typer.echo(line)


@app.command("make-tiny")
def make_tiny(
    folder: Annotated[Path, typer.Argument(help="Where to write the tiny offline weights.")],
) -> None:
    """Build the tiny randomly-initialised FLUX weights used by tests and offline demos."""
    from fluxserve.engines.tiny import build_tiny_weights

    _configure_logging("INFO")
    path = build_tiny_weights(folder)
    typer.echo(f"tiny weights written to {path}")


@app.command()
def pull(
    tools: Annotated[
        list[str] | None, typer.Argument(help="Tools to fetch weights for (default: every local tool).")
    ] = None,
) -> None:
    """Download real weights (and catalog LoRAs) ahead of time into the data dir's cache."""
    from fluxserve.engines.weights import pull_weights
    from fluxserve.errors import WeightsUnavailableError

    settings = load_settings()
    _configure_logging(settings.log_level)
    try:
        paths = pull_weights(settings.engine_config(), tools or None)
    except (WeightsUnavailableError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path in paths:
        typer.echo(str(path))


def _announce(runtime) -> None:
    settings = runtime.settings
    credentials = runtime.credentials
    where = settings.data_dir / "credentials.json"
    lines = [
        f"fluxserve listening on http://{settings.host}:{settings.port}",
        f"public URL: {settings.resolved_public_url}",
        f"weights: {settings.weights}   data dir: {settings.data_dir.resolve()}",
        f"api key:    {credentials.api_key}",
        f"api secret: {credentials.api_secret}"
        + (f"   (generated, stored in {where})" if credentials.generated else ""),
    ]
    for line in lines:
        typer.echo(line, err=True)


@functools.cache
def full_app() -> typer.Typer:
    """``app`` with the client commands and ``project`` added (once).

    Added here rather than at import: every worker process a ``serve`` spawns imports this module
    again (multiprocessing's spawn re-imports the main module), and the client commands bring httpx,
    rich and the SDK, a quarter of a second of CPU a worker never needs.
    """
    from fluxserve.cli_projects import app as project_app
    from fluxserve.client.cli import register as register_client_commands

    register_client_commands(app)
    app.add_typer(project_app, name="project")
    return app


SERVER_MODULES = frozenset(
    {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "pydantic_settings", "multipart", "PIL"}
    | {"torch", "diffusers", "transformers", "accelerate", "safetensors", "peft", "huggingface_hub", "numpy"}
)
"""Top-level packages of the `server` extra: a client-only install (`pip install fluxserve`) lacks them."""


def main() -> None:
    try:
        full_app()()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVER_MODULES:
            raise
        print(
            f"error: this command needs fluxserve's server, which is not installed here (no module "
            f"{exc.name!r}). The SDK and client commands work as they are; for the service run "
            "pip install 'fluxserve[server]'.",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
