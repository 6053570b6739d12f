"""Smoke run of the API stack on an install without the inference extra (``fluxserve[api]``).

Starts ``fluxserve serve`` with no workers on 127.0.0.1, then through the SDK: lists the tools,
queues a task, reads it back and cancels it; and checks that neither process imported torch.
Run by ``tests/smoke-python-versions`` on the Python versions whose torch wheel is not installed.
Usage: python tests/smoke/server_without_torch.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    from fluxserve.client import Client

    port = free_port()
    data = tempfile.mkdtemp(prefix="fluxserve-smoke-")
    env = {
        **os.environ,
        "FLUXSERVE_PORT": str(port),
        "FLUXSERVE_DATA_DIR": data,
        "FLUXSERVE_WORKERS": "0",
        "FLUXSERVE_API_KEY": "smoke-key",
        "FLUXSERVE_REQUIRE_SIGNATURE": "false",
    }
    server = subprocess.Popen([sys.executable, "-m", "fluxserve.cli", "serve"], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not answer /healthz")
        with Client(base_url=base, api_key="smoke-key") as client:
            tools = [tool.name for tool in client.tools()]
            assert "black-forest-labs/FLUX.1-Krea-dev" in tools, tools
            handle = client.run("black-forest-labs/FLUX.1-Krea-dev", prompt="a fox", steps=2)
            assert client.detail(handle).status == "task_queue"
            assert client.cancel(handle).status == "task_cancel"
    finally:
        server.terminate()
        server.wait(30)
    assert "torch" not in sys.modules
    print(f"server smoke on Python {sys.version.split()[0]}: ok ({len(tools)} tools, queue and cancel)")


if __name__ == "__main__":
    main()
