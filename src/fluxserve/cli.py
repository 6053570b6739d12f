"""The ``fluxserve`` command: serve | worker | pull | make-tiny, plus the client commands."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from fluxserve.cli_projects import app as project_app
from fluxserve.client.cli import register as register_client_commands

app = typer.Typer(
    help="fluxserve: a self-hosted, Wiro-compatible task API for FLUX image models.", no_args_is_help=True
)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@app.command()
def serve() -> None:
    """Start the HTTP API with in-process workers (settings from FLUXSERVE_* environment variables)."""
    import uvicorn

    from fluxserve.config import Settings
    from fluxserve.runtime import build_runtime

    settings = Settings()
    _configure_logging(settings.log_level)
    runtime = build_runtime(settings)
    _announce(runtime)
    runtime.start_background(with_worker=True)
    try:
        uvicorn.run(
            runtime.app(),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=10,  # open SSE streams (/v1/Task/Events) must not block a stop
        )
    finally:
        runtime.stop_background()


@app.command()
def worker() -> None:
    """Run only workers against the shared database (no HTTP API)."""
    import signal
    import threading

    from fluxserve.config import Settings
    from fluxserve.runtime import build_runtime

    settings = Settings()
    _configure_logging(settings.log_level)
    runtime = build_runtime(settings)
    runtime.start_background(with_worker=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    runtime.stop_background()


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
    from fluxserve.config import Settings
    from fluxserve.engines.weights import pull_weights
    from fluxserve.errors import WeightsUnavailableError

    settings = Settings()
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


register_client_commands(app)
app.add_typer(project_app, name="project")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
