"""Retries on 429/503 (honouring Retry-After), 5xx for safe calls only, and unreachable servers."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from client_fakes import Reply, task_json, tasklist

from fluxserve.client import AsyncClient, Client, RateLimited, ServerError, TransportError
from fluxserve.client.retry import RetryPolicy, parse_retry_after
from fluxserve.client.signing import sign

DETAIL = "/v1/Task/Detail"
RUN = "/v1/Run/black-forest-labs/FLUX.1-Krea-dev"
BUSY = {"result": False, "errors": [{"code": 0, "message": "busy"}]}


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record the delays the sync client waits instead of waiting them."""
    recorded: list[float] = []
    monkeypatch.setattr("fluxserve.client.sync.time.sleep", recorded.append)
    return recorded


def test_503_then_200_is_retried_after_retry_after(fake_api, sleeps):
    fake_api.routes[DETAIL] = [Reply(503, BUSY, {"Retry-After": "2"}), tasklist(task_json("5", "task_start"))]
    with Client(fake_api.base_url, api_key="k", api_secret="s") as client:
        task = client.detail("5")
    assert task.id == "5" and task.status == "task_start"
    assert sleeps == [2.0]
    calls = fake_api.calls(DETAIL)
    assert len(calls) == 2
    nonces = [call.headers["x-nonce"] for call in calls]
    assert nonces[0] != nonces[1]  # every attempt is signed afresh
    for call in calls:
        assert call.headers["x-signature"] == sign("k", "s", call.headers["x-nonce"])


def test_429_retries_even_a_run_and_gives_up_after_the_budget(fake_api, sleeps):
    fake_api.routes[RUN] = [Reply(429, BUSY, {"Retry-After": "1"})]
    with Client(fake_api.base_url, api_key="k", retries=2) as client, pytest.raises(RateLimited) as caught:
        client.run("black-forest-labs/FLUX.1-Krea-dev", prompt="fox")
    assert caught.value.status == 429 and caught.value.message == "busy"
    assert len(fake_api.calls(RUN)) == 3 and sleeps == [1.0, 1.0]


def test_run_is_not_resent_after_a_500(fake_api, sleeps):
    fake_api.routes[RUN] = [Reply(500, BUSY)]
    with Client(fake_api.base_url, api_key="k") as client, pytest.raises(ServerError):
        client.run("black-forest-labs/FLUX.1-Krea-dev", prompt="fox")
    assert len(fake_api.calls(RUN)) == 1 and sleeps == []


def test_detail_is_resent_after_a_502_with_backoff(fake_api, sleeps):
    fake_api.routes[DETAIL] = [Reply(502, BUSY), Reply(502, BUSY), tasklist(task_json("5"))]
    with Client(fake_api.base_url, api_key="k", backoff=0.5) as client:
        assert client.detail("5").id == "5"
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] > 0


def test_async_client_retries_a_503(fake_api):
    fake_api.routes[DETAIL] = [Reply(503, BUSY, {"Retry-After": "0"}), tasklist(task_json("8"))]

    async def main():
        async with AsyncClient(fake_api.base_url, api_key="k", api_secret="s") as client:
            return await client.detail("8")

    assert asyncio.run(main()).id == "8"
    assert len(fake_api.calls(DETAIL)) == 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server_is_retried_then_reported(sleeps):
    client = Client(f"http://127.0.0.1:{free_port()}", api_key="k", retries=2)
    with client, pytest.raises(TransportError, match="cannot reach") as caught:
        client.tools()
    assert caught.value.status == 0 and len(sleeps) == 2


def test_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    policy = RetryPolicy(retries=1, max_delay=5)
    assert policy.delay(0, httpx.Response(503, headers={"Retry-After": "100"}), idempotent=False) == 5
    assert policy.delay(1, httpx.Response(503), idempotent=True) is None
    assert policy.delay(0, httpx.Response(400), idempotent=True) is None
    assert policy.delay(0, httpx.ReadTimeout("slow"), idempotent=False) is None
    assert policy.delay(0, httpx.ConnectError("refused"), idempotent=False) is not None
