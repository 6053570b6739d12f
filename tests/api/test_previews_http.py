"""Latent previews on the Wiro side: opt-in SSE and socket frames, the latest preview in Detail."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.live import SseEvent, parse_sse, read_all, run_krea, socket_url
from tests.support.service import Service


@pytest.fixture(scope="module")
def previewing(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Iterator[Service]:
    # A long lease: on a loaded machine the tests' 3 s lease can lapse mid-run and re-queue the task.
    env = {"FLUXSERVE_PREVIEW_EVERY_STEPS": "2", "FLUXSERVE_LEASE_SECONDS": "60"}
    server = Service(tmp_path_factory.mktemp("previews"), weights=str(tiny_weights_dir), env_overrides=env)
    yield server.start()
    server.stop()


def _events(service: Service, token: str, query: str = "") -> list[SseEvent]:
    url = f"{service.base_url}/v1/Task/Events/{token}{query}"
    with httpx.stream("GET", url, timeout=120) as response:
        return list(parse_sse(response.iter_lines()))


def test_sse_previews_only_when_asked_and_detail_keeps_the_latest(previewing: Service) -> None:
    run_krea(previewing, steps=30, size=128)  # ahead in the queue: ours is still to run when we connect
    run = run_krea(previewing, steps=40, size=128)
    plain: list[SseEvent] = []
    thread = threading.Thread(target=lambda: plain.extend(_events(previewing, run["socketaccesstoken"])))
    thread.start()
    events: list[SseEvent] = []
    during = None
    url = f"{previewing.base_url}/v1/Task/Events/{run['socketaccesstoken']}?previews=1"
    with httpx.stream("GET", url, timeout=120) as response:
        for event in parse_sse(response.iter_lines()):
            events.append(event)
            if event.event == "task_preview" and during is None:
                during = previewing.detail(run["taskid"])  # stored before it was published
    thread.join(120)
    previews = [event.data["message"] for event in events if event.event == "task_preview"]
    assert previews and events[-1].event == "task_postprocess_end"
    assert all(int(message["step"]) % 2 == 0 for message in previews)
    image = Image.open(io.BytesIO(base64.b64decode(previews[0]["image"])))
    assert image.format == "JPEG" and image.size == (128, 128)
    assert plain and plain[-1].event == "task_postprocess_end"
    assert "task_preview" not in {event.event for event in plain}  # off unless asked
    assert during is not None and during["status"] == "task_start"
    line = json.loads(during["debugoutput"])
    assert line["type"] == "progressGenerate" and line["preview"].startswith("data:image/jpeg;base64,")
    assert "preview" not in previewing.detail(run["taskid"])["debugoutput"]  # ended: the engine's text


def test_socket_previews_on_registration_request(previewing: Service) -> None:
    from websockets.sync.client import connect

    run_krea(previewing, steps=30, size=128)  # ahead in the queue: ours is still to run when we register
    run = run_krea(previewing, steps=12, size=64)
    with connect(socket_url(previewing), open_timeout=10) as socket:
        socket.send(
            json.dumps({"type": "task_info", "tasktoken": run["socketaccesstoken"], "previews": True})
        )
        frames = read_all(socket)
    kinds = [frame["type"] for frame in frames]
    assert "task_preview" in kinds and kinds[-1] == "task_postprocess_end"
    preview = next(frame for frame in frames if frame["type"] == "task_preview")
    assert (
        preview["message"]["type"] == "previewGenerate" and preview["message"]["contenttype"] == "image/jpeg"
    )
