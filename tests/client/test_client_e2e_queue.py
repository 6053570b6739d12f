"""Cancel and list against a real server with no worker, so tasks stay queued."""

from __future__ import annotations

import asyncio

import pytest
from tests.support.shared import own_project

from fluxserve.client import AsyncClient, Client, TaskHandle, WaitTimeout

KREA = "black-forest-labs/FLUX.1-Krea-dev"


@pytest.fixture
def client(queue_only_service):
    server = own_project(queue_only_service, "client-queue")  # its task list is this test's alone
    with Client(server.base_url, api_key=server.api_key, api_secret=server.api_secret) as client:
        yield client


def test_cancel_a_queued_task(client):
    handle = client.run(KREA, prompt="never runs", steps=1, width=64, height=64)
    assert client.detail(handle).status == "task_queue"
    cancelled = client.cancel(handle)
    assert cancelled.id == handle.taskid and cancelled.status == "task_cancel"
    assert client.wait(handle, timeout=30).cancelled


def test_wait_times_out_on_a_queued_task(client):
    handle = client.run(KREA, prompt="waits", steps=1, width=64, height=64)
    with pytest.raises(WaitTimeout) as caught:
        client.wait(handle, timeout=0.5, poll_interval=0.05)
    assert caught.value.task.status == "task_queue"
    client.cancel(handle)


def test_list_pages(client):
    for index in range(3):
        client.run(KREA, prompt=f"queued {index}", steps=1, width=64, height=64)
    first = client.list_tasks(0, 1)
    second = client.list_tasks(1, 1)
    assert first.total >= 3 and len(first.tasks) == 1 and len(second.tasks) == 1
    assert first.tasks[0].id != second.tasks[0].id


def test_async_cancel_by_socket_token(queue_only_service):
    server = queue_only_service

    async def main():
        async with AsyncClient(
            server.base_url, api_key=server.api_key, api_secret=server.api_secret
        ) as client:
            handle = await client.run(KREA, prompt="cancel me", steps=1, width=64, height=64)
            cancelled = await client.cancel(TaskHandle(taskid="", socketaccesstoken=handle.socketaccesstoken))
            return handle, cancelled, await client.wait(handle, timeout=30)

    handle, cancelled, final = asyncio.run(main())
    assert cancelled.id == handle.taskid and cancelled.status == "task_cancel" and final.cancelled
