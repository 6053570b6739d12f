"""Live socket under pressure: does a flood of progress events, with clients that never read,
slow the publishing (worker) thread, and does every follower still get the terminal frame?

Runs the real API app (uvicorn in a thread, SQLite store in a temp dir) and publishes synthetic
events for one task straight into the event bus, as the worker would, from a plain thread:
N progress events as fast as possible, then the terminal one. Followers: ``--stalled`` raw TCP
clients (tiny receive buffer) that register and never read, plus one reader that reads everything.

Prints the publisher's cost per event with and without followers, and what the reader received.
Usage: .venv/bin/python bench/live_backpressure.py [--events 20000] [--stalled 20]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.service import free_port

from fluxserve.config import Settings
from fluxserve.runtime import build_runtime
from fluxserve.tasks.events import TaskEvent
from fluxserve.wire import progress_line


def stalled_client(port: int, token: str) -> socket.socket:
    """Handshake, register, then never read (receive buffer shrunk so the server's send blocks)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /v1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1024)
    assert response.startswith(b"HTTP/1.1 101"), response
    payload = json.dumps({"type": "task_info", "tasktoken": token}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


def read_frames(sock: socket.socket) -> list[dict]:
    """Everything the server sent until it closed the socket (unmasked server frames, text only)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, length, at = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        if opcode == 0x1:
            frames.append(json.loads(data[at : at + length]))
        at += length
    return frames


def publish(runtime, task, count: int) -> float:
    started = time.perf_counter()
    for step in range(1, count + 1):
        message = progress_line(step, count, 1.0)
        runtime.events.publish(TaskEvent(task.taskid, task.token, "task_output", message, droppable=True))
    elapsed = time.perf_counter() - started
    runtime.events.publish(TaskEvent(task.taskid, task.token, "task_cancel", [], terminal=True))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--stalled", type=int, default=20)
    args = parser.parse_args()

    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="fluxserve-bench-"))
    runtime = build_runtime(Settings(data_dir=data, api_key="k", api_secret="s", workers=0))
    project = runtime.store.project_by_key("k")
    server = uvicorn.Server(uvicorn.Config(runtime.app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    baseline_task = runtime.store.create_task(project.id, "black-forest-labs/FLUX.1-Krea-dev", {}, {})
    baseline = publish(runtime, baseline_task, args.events)

    task = runtime.store.create_task(project.id, "black-forest-labs/FLUX.1-Krea-dev", {}, {})
    stalled = [stalled_client(port, task.token) for _ in range(args.stalled)]
    frames: list[dict] = []
    with connect(f"ws://127.0.0.1:{port}/v1") as reader:
        reader.send(json.dumps({"type": "task_info", "tasktoken": task.token}))
        frames.append(json.loads(reader.recv(timeout=10)))  # task_queue: registered
        deadline = time.monotonic() + 30
        while runtime.events.listener_count(task.token) < args.stalled + 1:
            assert time.monotonic() < deadline, "the stalled clients did not register"
            time.sleep(0.05)
        loaded = publish(runtime, task, args.events)
        frames += [json.loads(text) for text in reader]
    stalled_frames = [read_frames(sock) for sock in stalled]  # now they read, all at once
    for sock in stalled:
        sock.close()
    server.should_exit = True

    progress = [f for f in frames if isinstance(f["message"], dict)]
    print(
        f"events published: {args.events} progress + 1 terminal, followers: {args.stalled} stalled + 1 reader"
    )
    print(f"publish cost, no followers:   {1e6 * baseline / args.events:7.2f} us/event")
    print(f"publish cost, with followers: {1e6 * loaded / args.events:7.2f} us/event")
    ends = {frames[-1]["type"] for frames in stalled_frames}
    counts = sorted(len(frames) for frames in stalled_frames)
    print(f"stalled clients, once they read: {counts[0]}..{counts[-1]} frames each, last frame: {ends}")
    print(f"reader got {len(progress)} progress frames (rest dropped), last frame: {frames[-1]['type']}")


if __name__ == "__main__":
    main()
