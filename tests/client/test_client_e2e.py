"""The SDK against a real fluxserve on the tiny weights: every call, sync and async."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from client_proxy import FlakyProxy
from PIL import Image
from tests.support.shared import own_project

from fluxserve.client import (
    AsyncClient,
    AuthError,
    Client,
    Conflict,
    NotFound,
    Progress,
    TaskFailed,
    TaskHandle,
    ValidationFailed,
)

KREA = "black-forest-labs/FLUX.1-Krea-dev"
KONTEXT = "wiro/flux_kontext_dev_with_2_image"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(service):
    with Client(service.base_url, api_key=service.api_key, api_secret=service.api_secret) as client:
        yield client


def assert_png(path: Path, size: tuple[int, int]) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert Image.open(io.BytesIO(data)).size == size


def test_tools_and_tool(client):
    names = {tool.name for tool in client.tools()}
    assert {KREA, KONTEXT, "wiro/text-to-image-flux-lora-fast"} <= names
    tool = client.tool(KREA)
    assert [item.name for item in tool.inputs] == [
        "prompt",
        "steps",
        "scale",
        "samples",
        "seed",
        "width",
        "height",
    ]
    assert tool.input("steps").default in (25, "25")


def test_unknown_tool_and_task_are_not_found(client):
    with pytest.raises(NotFound) as caught:
        client.tool("nobody/nothing")
    assert caught.value.code == 1 and caught.value.status == 200
    with pytest.raises(NotFound):
        client.detail("987654")


def test_run_wait_with_progress_and_download(client, tmp_path):
    handle = client.run(KREA, prompt="a red fox", steps=50, width=256, height=256, samples=2, seed=1)
    assert handle.taskid and handle.socketaccesstoken
    events: list[Progress] = []
    task = client.wait(handle, timeout=120, on_progress=events.append, poll_interval=0.05)
    assert task.succeeded and task.id == handle.taskid
    assert events[-1].status == "task_postprocess_end"
    steps = [event for event in events if event.has_steps]
    assert steps, [event.status for event in events]
    assert {event.total for event in steps} in ({50}, {100})  # per image, or counted over both samples
    assert [event.step for event in steps] == sorted(event.step for event in steps)
    paths = client.download(task, tmp_path)
    assert sorted(path.name for path in paths) == [f"{task.id}-0.png", f"{task.id}-1.png"]
    for path in paths:
        assert_png(path, (256, 256))


def test_wait_follows_the_live_socket(service):
    """Steps arrive as socket frames: Detail is read only to start and to settle, not polled."""
    details: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.url.path == "/v1/Task/Detail":
            details.append(request.url.path)

    http = httpx.Client(timeout=30, event_hooks={"request": [count]})
    with Client(service.base_url, service.api_key, service.api_secret, http_client=http) as client:
        handle = client.run(KREA, prompt="live", steps=60, width=256, height=256)
        events: list[Progress] = []
        task = client.wait(handle, timeout=120, on_progress=events.append, poll_interval=0.05)
    http.close()
    assert task.succeeded
    steps = [event.step for event in events if event.has_steps]
    assert steps and steps[-1] == 60 and steps == sorted(steps)
    # Polling every 0.05 s would read Detail dozens of times; the socket needs one read to start, one to
    # settle, and one per 5 quiet seconds (slack for a loaded machine).
    assert len(details) <= 8, len(details)


def test_detail_by_token_and_list(client):
    handle = client.run(KREA, prompt="a boat", steps=2, width=64, height=64)
    by_token = client.detail(TaskHandle(taskid="", socketaccesstoken=handle.socketaccesstoken))
    assert by_token.id == handle.taskid
    client.wait(handle, timeout=120)
    page = client.list_tasks(0, 50)
    assert handle.taskid in [task.id for task in page.tasks] and page.total >= 1


def test_kill_running_task(client):
    handle = client.run(KREA, prompt="slow", steps=100, width=1024, height=1024)
    seen: list[str] = []
    with pytest.raises(RuntimeError):  # stop following as soon as generation has started

        def stop_when_running(event: Progress) -> None:
            seen.append(event.status)
            if event.status == "task_start" or event.has_steps:
                raise RuntimeError("running")

        client.wait(handle, timeout=120, on_progress=stop_when_running, poll_interval=0.05)
    killed = client.kill(handle)
    assert killed.id == handle.taskid
    try:
        final = client.wait(handle, timeout=120)
    except TaskFailed as exc:
        final = exc.task
    assert final.status == "task_cancel"


def test_finished_task_cannot_be_cancelled_or_killed(client):
    handle = client.run(KREA, prompt="done", steps=1, width=64, height=64)
    client.wait(handle, timeout=120)
    with pytest.raises(Conflict, match="already ended"):
        client.cancel(handle)
    with pytest.raises(Conflict):
        client.kill(handle.taskid)


def test_kontext_uploads_local_images(client, tmp_path):
    first, second = tmp_path / "dog.png", tmp_path / "couch.png"
    Image.new("RGB", (64, 64), "red").save(first)
    Image.new("RGB", (64, 64), "blue").save(second)
    handle = client.run(
        KONTEXT, prompt="the dog on the couch", inputImageUrl=first, inputImage2Url=str(second), steps=2
    )
    task = client.wait(handle, timeout=120)
    assert task.succeeded
    [path] = client.download(task, tmp_path / "out")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_task_failure_raises_with_the_debugerror(client, service, tmp_path):
    image = tmp_path / "dog.png"
    Image.new("RGB", (64, 64), "red").save(image)
    missing = f"{service.base_url}/no/such/image.png"  # fetched by the worker, which gets a 404
    handle = client.run(KONTEXT, prompt="p", inputImageUrl=image, inputImage2Url=missing, steps=1)
    with pytest.raises(TaskFailed) as caught:
        client.wait(handle, timeout=120)
    assert caught.value.task.id == handle.taskid and caught.value.task.pexit != "0"
    assert caught.value.debugerror and "inputImage2" in caught.value.debugerror


def test_validation_client_side_and_server_side(client):
    with pytest.raises(ValidationFailed) as local:
        client.run(KREA, prompt="x", width=1000)
    assert local.value.status == 0 and [f.field for f in local.value.fields] == ["width"]
    with pytest.raises(ValidationFailed) as remote:
        client.run(KREA, prompt="x", width=1000, validate=False)
    assert remote.value.status == 200 and [f.field for f in remote.value.fields] == ["width"]


def test_wrong_credentials(service):
    with (
        Client(service.base_url, api_key=service.api_key, api_secret="wrong") as bad,
        pytest.raises(AuthError) as caught,
    ):
        bad.tools()
    assert caught.value.status == 401 and caught.value.message
    with Client(service.base_url, api_key="unknown-key", api_secret="x") as bad, pytest.raises(AuthError):
        bad.detail("1")
    with (
        Client(service.base_url, api_key=service.api_key) as key_only,
        pytest.raises(AuthError, match="requires signature authentication"),
    ):
        key_only.tools()  # this project requires signatures


def test_retry_through_a_proxy_answering_503(service, tmp_path):
    proxy = FlakyProxy(service.base_url, failures=2).start()
    try:
        with Client(
            proxy.base_url, api_key=service.api_key, api_secret=service.api_secret, retries=3
        ) as client:
            handle = client.run(KREA, prompt="through a proxy", steps=2, width=64, height=64)
            task = client.wait(handle, timeout=120)  # the proxy has no socket: polling
    finally:
        proxy.stop()
    assert proxy.refused == 2 and proxy.forwarded >= 2
    assert task.succeeded


def test_async_client_every_call(service, tmp_path):
    events: list[Progress] = []

    async def record(event: Progress) -> None:
        events.append(event)

    async def main():
        async with AsyncClient(
            service.base_url, api_key=service.api_key, api_secret=service.api_secret
        ) as client:
            tools = await client.tools()
            tool = await client.tool(KREA)
            handle = await client.run(KREA, prompt="an async fox", steps=30, width=128, height=128)
            detail = await client.detail(handle)
            task = await client.wait(handle, timeout=120, on_progress=record, poll_interval=0.05)
            page = await client.list_tasks(0, 5)
            paths = await client.download(task, tmp_path)
            with pytest.raises(Conflict):
                await client.cancel(handle)
            with pytest.raises(Conflict):
                await client.kill(handle)
            with pytest.raises(NotFound):
                await client.detail("987654")
            return tools, tool, handle, detail, task, page, paths

    tools, tool, handle, detail, task, page, paths = asyncio.run(main())
    assert KREA in [item.name for item in tools] and tool.name == KREA
    assert detail.id == handle.taskid and task.succeeded
    assert handle.taskid in [item.id for item in page.tasks]
    assert events[-1].status == "task_postprocess_end"
    assert [path.name for path in paths] == [f"{task.id}-0.png"]
    assert_png(paths[0], (128, 128))


def test_key_only_project(service):
    server = own_project(service, "key-only", key_only=True)  # `fluxserve project create --key-only`
    with Client(server.base_url, api_key=server.api_key) as client:
        assert KREA in [tool.name for tool in client.tools()]
        task = client.wait(client.run(KREA, prompt="key only", steps=1, width=64, height=64), timeout=120)
    assert task.succeeded
