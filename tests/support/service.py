"""A real fluxserve server in a subprocess on 127.0.0.1, and a signed HTTP helper to talk to it."""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fluxserve.config import sqlite_url
from fluxserve.tasks.store import TaskStore

TEST_API_KEY = "test-key-0123456789abcdefghijklmn"
TEST_API_SECRET = "test-secret-0123456789abcdef"


LOOPBACK_TLS = ssl.create_default_context()
"""The one TLS context of the tests' HTTP calls (``verify=LOOPBACK_TLS``). The servers under test speak
plain HTTP, but ``httpx.get``/``httpx.post`` build a new context per call, loading the CA bundle:
~30 ms of CPU each, which made polling a task 20 times a second cost a third of a core."""

_PORT_SLOTS = 16  # disjoint port ranges, one per xdist worker (gw0, gw1, ...; modulo)
_ports_given: set[int] = set()


def _port_range() -> range:
    """This process's ports: below the kernel's ephemeral range (where outgoing connections take
    their local ports, so a port handed out here is never taken by a client socket before the
    server binds it), one slice per xdist worker so that parallel workers never pick the same one."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    start = 10000 if low > 10000 + 1000 * _PORT_SLOTS else 1024
    width = max((min(low, 65536) - start) // _PORT_SLOTS, 64)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    slot = int(worker) % _PORT_SLOTS if worker.isdigit() else 0
    return range(start + slot * width, start + (slot + 1) * width)


def free_port() -> int:
    """A loopback port nothing listens on, never handed out before in this process.

    Servers started by tests get their port from here before they bind it; picking from this
    worker's own slice (at a random place, then onwards) keeps parallel workers and the client side
    of connections off it meanwhile. Falls back to the kernel's choice when the slice is used up."""
    ports = _port_range()
    offset = random.randrange(len(ports))
    for index in range(len(ports)):
        port = ports[(offset + index) % len(ports)]
        if port in _ports_given:
            continue
        _ports_given.add(port)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_stopping: list[tuple[subprocess.Popen, float]] = []  # stopped servers still shutting down


def reap_stopped() -> None:
    """Wait for every server stopped so far to exit; SIGKILL those past their 10 s."""
    while _stopping:
        process, deadline = _stopping.pop(0)
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def signed_headers(api_key: str, api_secret: str, nonce: str | None = None) -> dict[str, str]:
    nonce = nonce or str(int(time.time()))
    signature = hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()
    return {"x-api-key": api_key, "x-nonce": nonce, "x-signature": signature}


def process_env(
    data_dir: Path, weights: str, overrides: dict[str, str | None], **settings: str
) -> dict[str, str]:
    """The environment of a test's fluxserve process: short leases and retries, private URLs allowed
    (test servers are on loopback), one torch thread, no hub; ``overrides`` last (None removes)."""
    env = dict(os.environ)
    env.update(
        {
            "FLUXSERVE_DATA_DIR": str(data_dir),
            "FLUXSERVE_WEIGHTS": weights,
            "FLUXSERVE_API_KEY": TEST_API_KEY,
            "FLUXSERVE_API_SECRET": TEST_API_SECRET,
            "FLUXSERVE_ALLOW_PRIVATE_URLS": "true",
            "FLUXSERVE_LEASE_SECONDS": "3",
            "FLUXSERVE_POLL_INTERVAL_SECONDS": "0.1",
            "FLUXSERVE_CALLBACK_DELAYS_SECONDS": "0.3,0.6,1,1,1",
            "FLUXSERVE_LOG_LEVEL": "INFO",
            "OMP_NUM_THREADS": "1",
            "FLUXSERVE_MAX_BATCH": "1",  # tasks run one at a time unless a test turns batching on
            "HF_HUB_OFFLINE": "1",
            **settings,
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def launch(command: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """``fluxserve COMMAND`` in its own session, its output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "wb")  # noqa: SIM115 - the process owns it until it exits
    return subprocess.Popen(
        [sys.executable, "-m", "fluxserve.cli", command],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@dataclass
class Service:
    """One running ``fluxserve serve`` process with its own data dir."""

    data_dir: Path
    weights: str
    env_overrides: dict[str, str | None] = field(default_factory=dict)  # None removes a variable
    port: int = field(default_factory=free_port)
    api_key: str = TEST_API_KEY
    api_secret: str = TEST_API_SECRET
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return process_env(
            self.data_dir,
            self.weights,
            self.env_overrides,
            FLUXSERVE_HOST="127.0.0.1",
            FLUXSERVE_PORT=str(self.port),
            FLUXSERVE_API_KEY=self.api_key,
            FLUXSERVE_API_SECRET=self.api_secret,
        )

    @property
    def database_url(self) -> str:
        """The store this server uses, resolved as its settings resolve it."""
        return self.env().get("FLUXSERVE_DATABASE_URL") or sqlite_url(self.data_dir)

    def open_store(self) -> TaskStore:
        """The server's task store, opened from this (test) process."""
        return TaskStore.open(self.database_url)

    def start(self, timeout: float = 60.0) -> Service:
        self.log_path = self.data_dir / f"server-{self.port}-{int(time.time() * 1000)}.log"
        self.process = launch("serve", self.env(), self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1, verify=LOOPBACK_TLS).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM; the process gets 10 s to shut down (then SIGKILL), waited for by ``reap_stopped``.

        Only teardowns stop servers, and no test asserts on a shutdown, so the test that comes next
        need not wait for it (a worker process takes seconds to exit once torch is loaded)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            _stopping.append((self.process, time.monotonic() + 10))

    def hard_kill(self) -> None:
        """SIGKILL, as an out-of-memory killer or a power cut would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    # --- talking to it --------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return signed_headers(self.api_key, self.api_secret)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        kwargs.setdefault("verify", LOOPBACK_TLS)
        return httpx.post(f"{self.base_url}{path}", json=json, headers=headers, timeout=60, **kwargs)

    def run(self, tool: str, **inputs: Any) -> dict[str, Any]:
        response = self.post(f"/v1/Run/{tool}", json=inputs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["result"] is True, body
        return body

    def detail(self, taskid: str) -> dict[str, Any]:
        body = self.post("/v1/Task/Detail", json={"taskid": taskid}).json()
        assert body["result"] is True, body
        return body["tasklist"][0]

    def wait(self, taskid: str, timeout: float = 120.0, until: tuple[str, ...] = ()) -> dict[str, Any]:
        """Poll Detail until the task is terminal (or reaches one of ``until``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.detail(taskid)
            if task["status"] in ("task_postprocess_end", "task_cancel") or task["status"] in until:
                return task
            time.sleep(0.05)
        raise AssertionError(f"task {taskid} still {task['status']} after {timeout}s\n{self.log()[-3000:]}")
