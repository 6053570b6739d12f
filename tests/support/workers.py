"""``fluxserve worker`` processes for multi-machine tests: each with its own data folder, sharing
only the database URL and the object store with the API process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.service import LOOPBACK_TLS, Service, launch, process_env


@dataclass
class WorkerProcess:
    data_dir: Path
    weights: str
    env_overrides: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def env(self) -> dict[str, str]:
        return process_env(self.data_dir, self.weights, self.env_overrides, FLUXSERVE_DEVICE="cpu")

    def start(self) -> WorkerProcess:
        self.log_path = self.data_dir / f"worker-{int(time.time() * 1000)}.log"
        self.process = launch("worker", self.env(), self.log_path)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def owns(self, worker_id: str) -> bool:
        """Whether ``worker_id`` (host:pid:random) names this process."""
        return worker_id.split(":")[1:2] == [str(self.pid)]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def signal(self, number: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)

    def hard_kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for_workers(api: Service, live: int, timeout: float = 120.0) -> dict:
    """Until the API's /healthz counts ``live`` live workers; returns the counts."""
    deadline = time.monotonic() + timeout
    counts: dict = {}
    while time.monotonic() < deadline:
        health = httpx.get(f"{api.base_url}/healthz", timeout=5, verify=LOOPBACK_TLS).json()
        counts = health.get("workers", {})
        if counts.get("live") == live:
            return counts
        time.sleep(0.1)
    raise AssertionError(f"expected {live} live workers, /healthz says {counts}")
