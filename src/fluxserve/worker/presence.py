"""A worker's presence in the directory: registers it, renews its heartbeat, hears of a drain."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import replace

from fluxserve import __version__
from fluxserve.tasks.workers import WorkerDirectory, WorkerInfo

log = logging.getLogger(__name__)


class Presence:
    """Registers the worker at once (device as configured), then from a background thread resolves
    an ``auto`` device (which imports torch, so not on the caller's thread), renews ``expires_at``
    every ``interval`` seconds, and calls ``on_drain`` once when the directory says to drain."""

    def __init__(
        self,
        directory: WorkerDirectory,
        info: WorkerInfo,
        interval: float,
        on_drain: Callable[[], None],
    ) -> None:
        self._directory = directory
        self._info = info
        self._interval = interval
        self._ttl = 3 * interval + 1  # two missed beats are tolerated
        self._on_drain = on_drain
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fluxserve-presence", daemon=True)

    def start(self) -> None:
        self._directory.register(self._info, self._ttl)
        log.info("worker %s registered: tools %s", self._info.id, ", ".join(self._info.tools) or "none")
        self._thread.start()

    def stop(self) -> None:
        """Leave the directory (a clean stop; a killed worker's row stays and shows as lost)."""
        self._stop.set()
        self._thread.join(5)
        try:
            self._directory.unregister(self._info.id)
        except Exception:
            log.exception("could not remove worker %s from the directory", self._info.id)

    def _run(self) -> None:
        if self._info.device in ("", "auto"):
            from fluxserve.engines.home import resolve_device

            self._info = replace(self._info, device=resolve_device(self._info.device))
            self._beat_or_register(always_register=True)
        draining = False
        while not self._stop.wait(self._interval):
            flag = self._beat_or_register()
            if flag and not draining:
                draining = True
                log.info("worker %s asked to drain", self._info.id)
                self._on_drain()

    def _beat_or_register(self, always_register: bool = False) -> bool:
        """One heartbeat; returns the draining flag. A row that vanished is written again."""
        try:
            flag = None if always_register else self._directory.beat(self._info.id, self._ttl)
            if flag is None:
                self._directory.register(self._info, self._ttl)
                return False
            return flag
        except Exception:  # the database may be briefly unreachable; try again next beat
            log.exception("worker heartbeat failed")
            return False


def describe_worker(
    worker_id: str, device: str, tools: list[str], unavailable: dict[str, str], threads: int
) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        device=device,
        tools=tools,
        unavailable=unavailable,
        version=__version__,
        threads=threads,
    )
