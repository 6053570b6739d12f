"""A loopback test double of Black Forest Labs' API, speaking its real protocol.

``POST /v1/<model>`` (``x-key`` checked) answers ``{"id", "polling_url"}`` where the polling URL
points at a *different path* (``/regional/v1/get_result?id=...``), so a client that rebuilds the
URL instead of using it as given fails. ``GET`` of the polling URL answers ``Pending`` a chosen
number of times, then the scripted final status; ``Ready`` carries ``result.sample`` on the
delivery path ``/delivery/<id>/sample.<ext>``. Scripted HTTP failures (``fail_next``) and dropped
connections (``drop_next``) are injected per route. Every request is recorded.
"""

from __future__ import annotations

import io
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (32, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format="PNG" if fmt == "png" else "JPEG")
    return buffer.getvalue()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeBfl:
    api_key: str = "bfl-test-key-0123456789"
    pending_polls: int = 2
    final_status: str = "Ready"
    final_details: dict[str, Any] | None = None
    submit_status: int = 200
    submit_body: dict[str, Any] | None = None
    fail_next: dict[str, deque] = field(default_factory=dict)  # route -> deque of (status, body, headers)
    drop_next: dict[str, int] = field(default_factory=dict)  # route -> connections to drop
    delivery_status: int = 200
    requests: list[Recorded] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeBfl:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_GET(self) -> None:
                fake._handle(self, "GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def fail(self, route: str, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """Answer the next request on ``route`` ("submit" | "poll" | "delivery") with an HTTP error."""
        self.fail_next.setdefault(route, deque()).append((status, body, headers or {}))

    def drop(self, route: str, times: int = 1) -> None:
        """Close the connection without answering the next ``times`` requests on ``route``."""
        self.drop_next[route] = self.drop_next.get(route, 0) + times

    def of(self, route: str) -> list[Recorded]:
        prefix = {"submit": "/v1/", "poll": "/regional/", "delivery": "/delivery/"}[route]
        return [r for r in self.requests if r.path.startswith(prefix)]

    # --- request handling ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Recorded(method, handler.path, headers, body))
        path = urlsplit(handler.path).path
        route = (
            "poll"
            if path.startswith("/regional/")
            else "delivery"
            if path.startswith("/delivery/")
            else "submit"
        )
        if self._maybe_drop(handler, route) or self._maybe_fail(handler, route):
            return
        if route == "submit":
            self._submit(handler, path, headers, body)
        elif route == "poll":
            self._poll(handler, headers)
        else:
            self._deliver(handler, path)

    def _maybe_drop(self, handler: BaseHTTPRequestHandler, route: str) -> bool:
        with self._lock:
            if self.drop_next.get(route, 0) <= 0:
                return False
            self.drop_next[route] -= 1
        handler.close_connection = True
        handler.connection.shutdown(2)  # socket.SHUT_RDWR: no answer at all
        return True

    def _maybe_fail(self, handler: BaseHTTPRequestHandler, route: str) -> bool:
        with self._lock:
            queue = self.fail_next.get(route)
            if not queue:
                return False
            status, body, headers = queue.popleft()
        self._send_json(
            handler, status, body if body is not None else {"detail": "scripted failure"}, headers
        )
        return True

    def _submit(self, handler: BaseHTTPRequestHandler, path: str, headers: dict[str, str], body: Any) -> None:
        if headers.get("x-key") != self.api_key:
            self._send_json(handler, 403, {"detail": "Not authenticated - Invalid Authentication"})
            return
        if self.submit_status != 200:
            self._send_json(handler, self.submit_status, self.submit_body or {"detail": "refused"})
            return
        request_id = f"req-{len(self.polls) + 1}"
        with self._lock:
            self.polls[request_id] = 0
            self.formats[request_id] = (body or {}).get("output_format", "jpeg")
        polling_url = f"{self.base_url}/regional/v1/get_result?id={request_id}"
        self._send_json(handler, 200, {"id": request_id, "polling_url": polling_url})

    def _poll(self, handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
        request_id = parse_qs(urlsplit(handler.path).query).get("id", [""])[0]
        if headers.get("x-key") != self.api_key:
            self._send_json(handler, 403, {"detail": "Not authenticated"})
            return
        if request_id not in self.polls:
            self._send_json(handler, 200, {"id": request_id, "status": "Task not found"})
            return
        with self._lock:
            self.polls[request_id] += 1
            count = self.polls[request_id]
        if count <= self.pending_polls:
            self._send_json(handler, 200, {"id": request_id, "status": "Pending", "result": None})
            return
        answer: dict[str, Any] = {"id": request_id, "status": self.final_status, "result": None}
        if self.final_details is not None:
            answer["details"] = self.final_details
        if self.final_status == "Ready":
            ext = self.formats[request_id]
            answer["result"] = {
                "sample": f"{self.base_url}/delivery/{request_id}/sample.{ext}?se=signed",
                "seed": 1,
            }
        self._send_json(handler, 200, answer)

    def _deliver(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        if self.delivery_status != 200:
            self._send_json(handler, self.delivery_status, {"detail": "expired"})
            return
        fmt = "png" if path.endswith(".png") else "jpeg"
        data = image_bytes(fmt)
        handler.send_response(200)
        handler.send_header("content-type", f"image/{fmt}")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _send_json(
        handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
