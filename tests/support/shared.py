"""Servers shared by the whole test run, across pytest-xdist's parallel workers.

Each ``fluxserve serve`` with its worker process costs ~10 s of CPU to start, so a server whose
settings many tests can share starts once per run, not once per xdist worker: the first worker to
need it starts it under a file lock and writes a record (port, data dir, settings, pid) in the run's
shared temp folder; the others attach to that record. Nobody stops it at the end of a worker's
session (other workers may still use it): ``stop_shared`` stops every recorded server once, from the
process that ends the run (xdist's controller, which runs ``pytest_sessionfinish`` after every worker
has finished; with ``-n 0`` the one pytest process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.parallel import file_lock, shared_tmp_dir
from tests.support.service import Service

logger = logging.getLogger(__name__)

_RECORDS = "shared-servers"  # the folder of the records, in the run's shared temp folder
_started_here: dict[int, Service] = {}  # pid -> the servers this process started (it can wait for them)


def shared_service(
    name: str, tmp_path_factory: pytest.TempPathFactory, weights: Path, env: dict[str, str | None]
) -> Service:
    """The run's server called ``name``: started here if no process started it yet, else attached to.

    Its data dir is alone in its own folder (``<shared tmp>/shared-<name>/data``), so that a test may
    look at the data dir's parent without seeing other tests' files. The ``Service`` returned for an
    attached server has no ``process``: ``stop`` does nothing on it, and every helper that only talks
    to the server or reads its data dir and log works the same."""
    root = shared_tmp_dir(tmp_path_factory)
    records = root / _RECORDS
    record = records / f"{name}.json"
    with file_lock(records / f"{name}.lock"):
        if record.exists():
            saved = json.loads(record.read_text())
            if not _alive(saved["pid"]):
                raise RuntimeError(f"the shared server {name!r} (pid {saved['pid']}) is gone")
            return _attached(saved)
        # A shared server idles for most of the run: its worker polls the queue at the product's
        # default pace (0.5 s, not the tests' 0.1 s; ~1 % of a core less), a queued task wakes it at once.
        env = {"FLUXSERVE_POLL_INTERVAL_SECONDS": "0.5", **env}
        server = Service(root / f"shared-{name}" / "data", weights=str(weights), env_overrides=env)
        try:
            _start_and_record(server, record)
        except BaseException:  # not healthy, or Ctrl-C: no record, so nobody else would stop it
            if server.process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()
            raise
        return server


def _start_and_record(server: Service, record: Path) -> None:
    server.start()
    assert server.process is not None and server.log_path is not None
    _started_here[server.process.pid] = server
    saved = {
        "pid": server.process.pid,
        "base_url": server.base_url,
        "port": server.port,
        "data_dir": str(server.data_dir),
        "weights": server.weights,
        "env_overrides": server.env_overrides,
        "log_path": str(server.log_path),
    }
    partial = record.with_suffix(".partial")
    partial.write_text(json.dumps(saved, indent=1))
    partial.replace(record)


def _attached(saved: dict) -> Service:
    return Service(
        Path(saved["data_dir"]),
        weights=saved["weights"],
        env_overrides=saved["env_overrides"],
        port=saved["port"],
        log_path=Path(saved["log_path"]),
    )


_projects_made = itertools.count()


def own_project(server: Service, name: str, *, key_only: bool = False) -> Service:
    """``server`` as seen by a new project of its own: what it lists (Task/List, the playground's
    history) holds only that project's tasks, whatever tests running in parallel do on the server.

    Created in the server's store like ``fluxserve project create`` does (SQLite data dir)."""
    from fluxserve.tasks.projects import mark_changed

    store = server.open_store()
    try:
        unique = f"{name}-{os.getpid()}-{next(_projects_made)}"
        project = store.projects.create(unique, require_signature=not key_only)
    finally:
        store.engine.dispose()
    mark_changed(server.data_dir)  # API processes drop cached keys, as after the CLI
    return dataclasses.replace(server, api_key=project.api_key, api_secret=project.api_secret, process=None)


def stop_shared(tmp_path_factory: pytest.TempPathFactory, grace: float = 10.0) -> None:
    """Stop every server recorded in this run: SIGTERM, ``grace`` seconds, then SIGKILL to its group.

    Each record is removed as its server is stopped, so a second call stops nothing twice."""
    records = shared_tmp_dir(tmp_path_factory) / _RECORDS
    stopping: list[tuple[int, Path]] = []
    for record in sorted(records.glob("*.json")) if records.is_dir() else []:
        pid = json.loads(record.read_text())["pid"]
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        stopping.append((pid, record))
    deadline = time.monotonic() + grace
    for pid, record in stopping:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        while _group(pid) and time.monotonic() < deadline:  # its worker processes, if still ending
            time.sleep(0.05)
        if _alive(pid) or _group(pid):
            logger.warning("shared server %s did not stop in %.0f s: killed", pid, grace)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # its own session and group (tests/support/service.launch)
            while _alive(pid) or _group(pid):
                time.sleep(0.05)
        record.unlink()
        _started_here.pop(pid, None)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs. A server whose starter (an xdist worker) has ended is init's child:
    no subreaper adopts it here, since a zombie that nobody reaps would look alive to a restarted
    server's check for its dead predecessor's workers (fluxserve.worker.lease), so an ended one may
    briefly be a zombie, which counts as ended."""
    server = _started_here.get(pid)
    if server is not None and server.process is not None:
        return server.process.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in ("Z", "X")


def _group(pgid: int) -> list[int]:
    """The running processes of process group ``pgid`` (a server's own, with its worker processes)."""
    members: list[int] = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            state, _ppid, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members
