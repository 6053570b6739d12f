"""Kill reaches a task that is still downloading its inputs (preprocessing), not only the denoiser."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.service import Service

LORA = "wiro/text-to-image-flux-lora-fast"
QUICK = {"prompt": "a lion", "steps": 2, "width": 64, "height": 64, "seed": "1"}


@contextmanager
def trickling_server() -> Iterator[tuple[str, threading.Event]]:
    """Serves a 'LoRA' that announces 64 MiB and then sends 1 KiB every 50 ms, until told to stop.

    Yields the URL and an event set once the client has gone (its connection closed)."""
    stop, gone = threading.Event(), threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(64 * 2**20))
            self.end_headers()
            try:
                while not stop.is_set():
                    self.wfile.write(b"\0" * 1024)
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                gone.set()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow.safetensors", gone
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_kill_stops_a_slow_lora_download_and_the_task_ends_cancelled(partner_local_service: Service) -> None:
    # A short Kill wait and a long fetch deadline (the shared server's settings, tests/conftest.py):
    # the old code kept downloading (and then failed).
    server = partner_local_service
    with trickling_server() as (url, gone):
        taskid = server.run(LORA, **QUICK, selectedLoraModelPrivateUrl=url)["taskid"]
        assert server.wait(taskid, until=("task_preprocess_start",))["status"] == "task_preprocess_start"
        killed = server.post("/v1/Task/Kill", json={"taskid": taskid}).json()
        assert killed["result"] is True, killed
        task = server.wait(taskid, timeout=30)
        assert task["status"] == "task_cancel", task
        assert task["pexit"] == "0" and task["debugerror"] == ""
        assert "downloading selectedLoraModelPrivateUrl" in task["debugoutput"]
        assert gone.wait(10)  # the download's connection was closed, not left hanging
