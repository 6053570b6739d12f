"""``fluxserve serve``'s worker processes: spawned, watched, restarted with back-off, drained.

Workers are started with the ``spawn`` method (a fresh interpreter, never a fork of the API
process), so each imports torch itself and the API process never does. When a worker dies, the
supervisor tells ``on_exit`` at once (the runtime then expires the dead process's leases and
re-queues its task) and starts a new one after a delay that doubles while workers keep dying
young. ``stop`` asks every worker to finish its current task (SIGTERM), waits up to the drain
time, then kills what is left.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from fluxserve.config import Settings
from fluxserve.worker.process import process_main

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSpec:
    """One supervised worker: its slot, the device it runs on ("" = the settings' device), threads."""

    index: int
    device: str = ""
    torch_threads: int = 0  # 0 = torch's own default


def worker_specs(settings: Settings, cpu_count: int | None = None) -> list[WorkerSpec]:
    """One per FLUXSERVE_DEVICES entry, else FLUXSERVE_WORKERS of them; none when WORKERS=0.

    CPU threads are shared out so that N workers do not each start one thread per core (torch
    would, and oversubscribed OpenMP threads spin: a crowded 2-core box ran tiny tasks 15x slower).
    """
    if settings.workers <= 0:
        return []
    devices = settings.devices or [""] * settings.workers
    cores = cpu_count or os.cpu_count() or 1
    if settings.torch_threads:
        threads = settings.torch_threads
    elif os.environ.get("OMP_NUM_THREADS"):
        threads = 0  # the operator's OMP_NUM_THREADS holds (each worker inherits it)
    else:
        threads = max(1, cores // len(devices))
    return [WorkerSpec(index, device, threads) for index, device in enumerate(devices)]


@dataclass
class _Slot:
    spec: WorkerSpec
    process: BaseProcess | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: float = 0.0
    restarts: int = 0


class Supervisor:
    def __init__(
        self,
        specs: list[WorkerSpec],
        on_exit: Callable[[int], None] = lambda pid: None,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        stable_seconds: float = 60.0,
    ) -> None:
        """``on_exit(pid)`` is called from the watch thread for every worker that died unasked."""
        self._slots = [_Slot(spec) for spec in specs]
        self._on_exit = on_exit
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._stable_seconds = stable_seconds
        self._context = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="fluxserve-supervisor", daemon=True)

    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        self._thread.start()

    def pids(self) -> list[int]:
        with self._lock:
            return [slot.process.pid for slot in self._slots if slot.process and slot.process.pid]

    def restarts(self) -> int:
        with self._lock:
            return sum(slot.restarts for slot in self._slots)

    def stop(self, drain_seconds: float) -> None:
        """SIGTERM every worker (each finishes its current task), SIGKILL those still up after the drain."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            processes = [slot.process for slot in self._slots if slot.process is not None]
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + drain_seconds
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker pid %s still busy after %.0fs; killing it", process.pid, drain_seconds)
                process.kill()
                process.join(5)
        log.info("worker processes stopped")

    # --- watching -------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        spec = slot.spec
        process = self._context.Process(
            target=process_main,
            args=(spec.index, spec.device, spec.torch_threads, os.getpid()),
            name=f"fluxserve-worker-{spec.index}",
            daemon=True,
        )
        process.start()
        slot.process, slot.started_at = process, time.monotonic()
        log.info("worker %d started (pid %s, device %s)", spec.index, process.pid, spec.device or "default")

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                sentinels = [slot.process.sentinel for slot in self._slots if slot.process is not None]
            wait(sentinels, timeout=0.25)
            if self._stopping.is_set():
                return
            with self._lock:
                for slot in self._slots:
                    self._check(slot)

    def _check(self, slot: _Slot) -> None:
        now = time.monotonic()
        process = slot.process
        if process is None:
            if now >= slot.restart_at:
                slot.restarts += 1
                self._spawn(slot)
            return
        if process.is_alive():
            return
        process.join()
        lived = now - slot.started_at
        if process.exitcode == 0:  # drained on request (`fluxserve workers drain`): leave it stopped
            log.info("worker %d (pid %s) drained and exited; not restarting it", slot.spec.index, process.pid)
            slot.process, slot.restart_at = None, float("inf")
            return
        young = lived < self._stable_seconds and slot.backoff > 0
        slot.backoff = min(self._max_backoff, slot.backoff * 2) if young else self._min_backoff
        slot.process, slot.restart_at = None, now + slot.backoff
        log.error(
            "worker %d (pid %s) exited with code %s after %.1fs; restarting in %.1fs",
            slot.spec.index,
            process.pid,
            process.exitcode,
            lived,
            slot.backoff,
        )
        try:
            self._on_exit(process.pid or 0)
        except Exception:
            log.exception("recovering the tasks of worker pid %s failed; the sweeper will retry", process.pid)
