"""A loopback HTTP receiver for callbacks: records every POST and answers a scripted status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CallbackReceiver:
    def __init__(self, statuses: list[int], port: int = 0) -> None:
        self.statuses = list(statuses)  # answers for the first requests; 200 afterwards
        self.received: list[dict[str, Any]] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                payload = json.loads(raw or b"null")
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.received.append({"status": status, "json": payload, "raw": raw, "headers": headers})
                self.send_response(status)
                self.end_headers()
                if status == 200:
                    receiver.event.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@contextmanager
def callback_receiver(statuses: list[int] | None = None, port: int = 0) -> Iterator[CallbackReceiver]:
    """A receiver on 127.0.0.1 (on ``port`` when given: to come back up where one was down)."""
    receiver = CallbackReceiver(statuses or [], port)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
