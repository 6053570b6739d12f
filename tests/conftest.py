"""Shared fixtures: the tiny offline FLUX weights (built once per session) and running servers."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.parallel import file_lock, shared_tmp_dir
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.s3 import S3Server, start_s3
from tests.support.service import Service, reap_stopped
from tests.support.shared import shared_service, stop_shared


def pytest_configure(config: pytest.Config) -> None:
    """Settings of the test processes themselves, before anything imports torch.

    * Compiled bytecode is cached (``__pycache__``, gitignored) even where PYTHONDONTWRITEBYTECODE is
      set: each of the ~100 server and worker processes a run starts would otherwise compile
      fluxserve's own modules again (tenths of a second of CPU each).
    * A parallel (xdist) worker runs torch on one thread: several workers on a few cores each starting
      a thread per core would only fight over them (the servers the tests start run with
      OMP_NUM_THREADS=1 too, see tests/support/service.py).
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    if _collects(config):
        gc.disable()  # until the collection is done: see pytest_collection_finish


def _collects(config: pytest.Config) -> bool:
    """Whether this process collects tests: an xdist worker or a run without xdist (not the xdist
    controller, which only hands tests out)."""
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) or not getattr(config.option, "numprocesses", 0)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collecting imports every test module, and with them torch and diffusers (~700,000 objects):
    the cyclic GC, paused since pytest_configure, would have walked them again and again. They live
    as long as the run, so they are frozen out of every later collection (as ``fluxserve.startup_gc``
    does for the server's processes); pytest's own end-of-run collections get cheaper too."""
    gc.freeze()
    gc.enable()


@pytest.hookimpl(trylast=True)  # after xdist's controller has ended its workers
def pytest_sessionfinish(session: pytest.Session) -> None:
    reap_stopped()  # the servers that teardowns stopped are gone before the run ends
    if not hasattr(session.config, "workerinput"):  # the run ends here: no test uses them any more
        stop_shared(session.config._tmp_path_factory)  # (also after a failure or Ctrl-C)


OWN_SERVERS = {"make_service", "postgres", "s3_server"}
"""Tests asking for these start their own servers (seconds of CPU each): scheduled first."""


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (pyproject's addopts: --dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """How parallel (xdist) workers share the suite.

    * The tests of a module that share a module-scoped fixture (a running server, a browser) form one
      group that runs on one worker, so that each such fixture starts once; every other test is
      scheduled on its own, wherever a worker is free.
    * The long ones go first (tests that start their own servers, and the groups), so that no long
      test starts last while the other workers sit idle. The order is the same in every worker, as
      xdist requires (a stable sort of the collection order).
    """
    grouped: set[str] = set()
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info else ()
        if any(defs and defs[-1].scope == "module" for defs in definitions):
            module = item.nodeid.split("::", 1)[0]
            item.add_marker(pytest.mark.xdist_group(module))
            grouped.add(item.nodeid)

    def rank(item: pytest.Item) -> int:
        if OWN_SERVERS.intersection(getattr(item, "fixturenames", ())):
            return 0
        return 1 if item.nodeid in grouped else 2

    items.sort(key=rank)


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random FLUX weights in the standard diffusers layout, loaded like real weights.

    Built once per test run: parallel (xdist) workers share one folder, the first builds it under a
    file lock and the others wait for it."""
    from fluxserve.engines.tiny import build_tiny_weights

    root = shared_tmp_dir(tmp_path_factory) / "tiny-weights"
    with file_lock(root.with_name("tiny-weights.lock")):
        return build_tiny_weights(root)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Service:
    """One real server with the default settings, on the tiny weights, talking over 127.0.0.1.

    Shared by every test that asks for it, across the parallel (xdist) workers too
    (tests/support/shared.py): starting a server with its worker process costs seconds of CPU. Tests on
    it run concurrently with other workers' tests on the same server and its one worker process, so
    none may depend on what others do on it: none counts all tasks, changes a project or restarts it,
    and each finds its own tasks by their ids; tests that need more start their own."""
    return shared_service("service", tmp_path_factory, tiny_weights_dir, {})


@pytest.fixture
def make_service(tmp_path: Path, tiny_weights_dir: Path) -> Iterator[Callable[..., Service]]:
    """Start servers with custom settings (``make_service(FLUXSERVE_X="…")``); all stopped afterwards."""
    started: list[Service] = []

    def start(data_dir: Path | None = None, **env: str) -> Service:
        server = Service(
            data_dir or tmp_path / f"svc{len(started)}", weights=str(tiny_weights_dir), env_overrides=env
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def queue_only_service(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Service:
    """A server with no worker: tasks stay queued (for API-only tests and Cancel). Shared like ``service``."""
    return shared_service("queue-only", tmp_path_factory, tiny_weights_dir, {"FLUXSERVE_WORKERS": "0"})


@pytest.fixture(scope="session")
def strict_service(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Service:
    """A server with the strict default: private (loopback) URLs are refused (FLUXSERVE_ALLOW_PRIVATE_URLS
    unset), and callbacks are retried quickly (0.2 s) so that a refused one is noted soon. Shared like
    ``service``."""
    env = {"FLUXSERVE_ALLOW_PRIVATE_URLS": None, "FLUXSERVE_CALLBACK_DELAYS_SECONDS": "0.2"}
    return shared_service("strict", tmp_path_factory, tiny_weights_dir, env)


@pytest.fixture(scope="session")
def partner_local_service(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Service:
    """A server with no BFL key whose partner tools (FLUX.2 [pro], FLUX1.1 [pro] Ultra) run on their
    local stand-ins, so every tool runs on the tiny weights, and that logs JSON lines
    (FLUXSERVE_LOG_FORMAT=json, for tests/api/test_webhooks_http.py). Its lease is long: on a loaded
    machine the tests' 3 s lease could lapse mid-run and re-queue a task. Kill waits up to 20 s for a
    task to stop and a LoRA download may take 300 s (tests/worker/test_kill_during_download.py: a Kill
    must end a download long before its deadline). Shared like ``service``."""
    env = {
        "BFL_API_KEY": "",
        "FLUXSERVE_BACKEND_FLUX_2_PRO_T2I": "local",
        "FLUXSERVE_BACKEND_FLUX_PRO_1_1_ULTRA": "local",
        "FLUXSERVE_LEASE_SECONDS": "60",
        "FLUXSERVE_LOG_FORMAT": "json",
        "FLUXSERVE_KILL_WAIT_SECONDS": "20",
        "FLUXSERVE_LORA_FETCH_TIMEOUT_SECONDS": "300",
    }
    return shared_service("partner-local", tmp_path_factory, tiny_weights_dir, env)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this session (Debian's packages); never skipped.

    ``make test`` installs the server first where it can (``tests/ensure-postgres``); anywhere else a
    missing server fails these tests with how to install it.
    """
    server = start_postgres()
    if server is None:
        pytest.fail(
            "PostgreSQL is not installed, and the task store's tests run against a real server: install "
            "it (Debian/Ubuntu: `sudo apt-get install postgresql`; `make test` does it when run as root), "
            "or put the folder holding initdb and pg_ctl on PATH.",
            pytrace=False,
        )
    yield server
    reap_stopped()  # no server stopped earlier is still shutting down on this database
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server on 127.0.0.1 (moto's standalone server), for the whole session."""
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    reap_stopped()
    server.stop()
