"""A scripted stand-in for the API (plain http.server, no httpx) and for the live socket.

Used by the unit tests of retries and ``wait``; the end-to-end tests use the real service.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.sync.server import ServerConnection, serve


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body if self.body is not None else {"errors": [], "result": True}).encode()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Route = Callable[[Seen], Reply] | list[Reply]


class FakeApi:
    """Routes map a path to a function or to a list of replies served in order (the last repeats)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self, path: str) -> list[Seen]:
        return [item for item in self.seen if item.path == path]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        seen = Seen(
            handler.command,
            handler.path,
            {k.lower(): v for k, v in handler.headers.items()},
            handler.rfile.read(length),
        )
        with self._lock:
            self.seen.append(seen)
            route = self.routes.get(handler.path)
            if route is None:
                reply = Reply(404, {"result": False, "errors": [{"code": 1, "message": "no route"}]})
            elif isinstance(route, list):
                reply = route.pop(0) if len(route) > 1 else route[0]
            else:
                reply = None
        if reply is None:
            reply = route(seen)
        content = reply.encoded()
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


def task_json(task_id: str = "1", status: str = "task_queue", **extra: Any) -> dict[str, Any]:
    task = {
        "id": task_id,
        "uuid": f"uuid-{task_id}",
        "socketaccesstoken": f"token-{task_id}",
        "status": status,
        "parameters": {},
        "debugoutput": "",
        "debugerror": "",
        "pexit": "0",
        "outputs": [],
    }
    task.update(extra)
    return task


def tasklist(*tasks: dict[str, Any]) -> Reply:
    return Reply(200, {"total": str(len(tasks)), "errors": [], "tasklist": list(tasks), "result": True})


class FakeSocket:
    """A live socket at ``/v1`` that answers a task_info with the scripted frames, then closes."""

    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = frames
        self.subscriptions: list[dict[str, Any]] = []
        self._server = serve(self._serve, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/v1"

    def start(self) -> FakeSocket:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def _serve(self, connection: ServerConnection) -> None:
        self.subscriptions.append(json.loads(connection.recv()))
        for frame in self.frames:
            connection.send(json.dumps(frame))
        connection.close()


def progress_frame(step: int, total: int, token: str = "token-1") -> dict[str, Any]:
    message = {
        "type": "progressGenerate",
        "percentage": str(round(100 * step / total)),
        "stepCurrent": str(step),
        "stepTotal": str(total),
        "speed": "1.5",
        "speedType": "it/s",
        "elapsedTime": f"{step}s",
        "remainingTime": f"{total - step}s",
    }
    return {"type": "task_output", "id": "1", "tasktoken": token, "message": message, "result": True}


def status_frame(status: str, message: Any = "", token: str = "token-1") -> dict[str, Any]:
    return {"type": status, "id": "1", "tasktoken": token, "message": message, "result": True}
