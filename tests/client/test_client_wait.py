"""wait(): live socket when reachable, polling otherwise; progress reported; failures raised."""

from __future__ import annotations

import asyncio
import socket

import pytest
from client_fakes import FakeSocket, Reply, progress_frame, status_frame, task_json, tasklist

from fluxserve.client import AsyncClient, Client, TaskFailed, TaskHandle, WaitTimeout
from fluxserve.client.models import Progress

DETAIL = "/v1/Task/Detail"
PNG = b"\x89PNG\r\n\x1a\nfake"


def done(task_id: str = "1", **extra) -> dict:
    outputs = [
        {
            "id": "o1",
            "name": "0.png",
            "contenttype": "image/png",
            "size": str(len(PNG)),
            "url": "/files/0.png",
        }
    ]
    return task_json(task_id, "task_postprocess_end", outputs=outputs, **extra)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_polling_reports_status_changes_and_steps(fake_api):
    fake_api.routes[DETAIL] = [
        tasklist(task_json("1", "task_queue")),
        tasklist(task_json("1", "task_start", debugoutput="2/4 [00:01<00:01, 2.00it/s]")),
        tasklist(task_json("1", "task_start", debugoutput="4/4 [00:02<00:00, 2.00it/s]")),
        tasklist(done()),
    ]
    events: list[Progress] = []
    with Client(fake_api.base_url, api_key="k", use_socket=False) as client:
        task = client.wait("1", on_progress=events.append, poll_interval=0.01)
    assert task.succeeded
    assert [event.status for event in events if not event.has_steps] == [
        "task_queue",
        "task_start",
        "task_postprocess_end",
    ]
    assert [(event.step, event.total, event.speed) for event in events if event.has_steps] == [
        (2, 4, 2.0),
        (4, 4, 2.0),
    ]


def test_socket_frames_drive_progress(fake_api):
    frames = [
        status_frame("task_start"),
        progress_frame(1, 3),
        progress_frame(2, 3),
        progress_frame(3, 3),
        status_frame("task_output"),
        status_frame("task_postprocess_end", message=[{"name": "0.png"}]),
    ]
    live = FakeSocket(frames).start()
    fake_api.routes[DETAIL] = [tasklist(task_json("1", "task_queue")), tasklist(done())]
    events: list[Progress] = []
    try:
        with Client(fake_api.base_url, api_key="k", socket_url=live.url) as client:
            task = client.wait(TaskHandle("1", "token-1"), on_progress=events.append, poll_interval=0.01)
    finally:
        live.stop()
    assert task.succeeded and task.outputs[0].name == "0.png"
    assert live.subscriptions == [{"type": "task_info", "tasktoken": "token-1"}]
    assert [event.step for event in events if event.has_steps] == [1, 2, 3]
    assert all(
        event.speed_type == "it/s" and event.status == "task_start" for event in events if event.has_steps
    )
    assert events[-1].status == "task_postprocess_end"
    assert len(fake_api.calls(DETAIL)) == 2  # once to start, once for the final state: no polling


def test_socket_closing_early_falls_back_to_polling(fake_api):
    live = FakeSocket([status_frame("task_start")]).start()
    fake_api.routes[DETAIL] = [
        tasklist(task_json("1", "task_queue")),
        tasklist(task_json("1", "task_start")),
        tasklist(done()),
    ]
    try:
        with Client(fake_api.base_url, api_key="k", socket_url=live.url) as client:
            assert client.wait("1", poll_interval=0.01).succeeded
    finally:
        live.stop()
    assert len(fake_api.calls(DETAIL)) == 3


def test_unreachable_socket_falls_back_to_polling(fake_api):
    fake_api.routes[DETAIL] = [tasklist(task_json("1", "task_start")), tasklist(done())]
    with Client(fake_api.base_url, api_key="k", socket_url=f"ws://127.0.0.1:{closed_port()}/v1") as client:
        assert client.wait("1", poll_interval=0.01).succeeded


def test_failed_task_raises_with_debugerror(fake_api):
    failed = task_json("1", "task_postprocess_end", pexit="1", debugerror="CUDA out of memory")
    fake_api.routes[DETAIL] = [tasklist(failed)]
    with Client(fake_api.base_url, api_key="k") as client, pytest.raises(TaskFailed) as caught:
        client.wait("1")
    assert caught.value.debugerror == "CUDA out of memory"
    assert "CUDA out of memory" in str(caught.value) and caught.value.task.id == "1"


def test_cancelled_task_is_returned(fake_api):
    fake_api.routes[DETAIL] = [tasklist(task_json("1", "task_cancel"))]
    with Client(fake_api.base_url, api_key="k") as client:
        assert client.wait("1").cancelled


def test_timeout_raises_with_last_state(fake_api):
    fake_api.routes[DETAIL] = [tasklist(task_json("1", "task_queue"))]
    with (
        Client(fake_api.base_url, api_key="k", use_socket=False) as client,
        pytest.raises(WaitTimeout) as caught,
    ):
        client.wait("1", timeout=0.2, poll_interval=0.01)
    assert caught.value.task.status == "task_queue"


def test_download_writes_outputs(fake_api, tmp_path):
    fake_api.routes[DETAIL] = [tasklist(done("9"))]
    fake_api.routes["/files/0.png"] = [Reply(200, PNG)]
    with Client(fake_api.base_url, api_key="k", api_secret="s") as client:
        paths = client.download("9", tmp_path / "out")
    assert paths == [tmp_path / "out" / "9-0.png"]
    assert paths[0].read_bytes() == PNG
    assert "x-api-key" not in fake_api.calls("/files/0.png")[0].headers  # no credentials to output URLs


def test_async_wait_with_socket_and_async_callback(fake_api):
    live = FakeSocket(
        [progress_frame(1, 2), progress_frame(2, 2), status_frame("task_postprocess_end")]
    ).start()
    fake_api.routes[DETAIL] = [tasklist(task_json("1", "task_start")), tasklist(done())]
    events: list[Progress] = []

    async def record(event: Progress) -> None:
        await asyncio.sleep(0)
        events.append(event)

    async def main():
        async with AsyncClient(fake_api.base_url, api_key="k", socket_url=live.url) as client:
            return await client.wait("1", on_progress=record)

    try:
        assert asyncio.run(main()).succeeded
    finally:
        live.stop()
    assert [event.step for event in events if event.has_steps] == [1, 2]


def test_async_wait_polls_and_raises_failure(fake_api):
    fake_api.routes[DETAIL] = [
        tasklist(task_json("1", "task_start")),
        tasklist(task_json("1", "task_postprocess_end", pexit="2", debugerror="bad weights")),
    ]

    async def main():
        async with AsyncClient(fake_api.base_url, api_key="k", use_socket=False) as client:
            await client.wait("1", poll_interval=0.01)

    with pytest.raises(TaskFailed, match="bad weights"):
        asyncio.run(main())


def test_replayed_older_statuses_are_not_reported(fake_api):
    frames = [status_frame("task_queue"), status_frame("task_accept"), status_frame("task_start"),
              progress_frame(1, 1), status_frame("task_postprocess_end")]  # fmt: skip
    live = FakeSocket(frames).start()
    fake_api.routes[DETAIL] = [tasklist(task_json("1", "task_accept")), tasklist(done())]
    events: list[Progress] = []
    try:
        with Client(fake_api.base_url, api_key="k", socket_url=live.url) as client:
            client.wait("1", on_progress=events.append)
    finally:
        live.stop()
    statuses = [event.status for event in events if not event.has_steps]
    assert statuses == ["task_accept", "task_start", "task_postprocess_end"]
