"""The production BFL client against a loopback server speaking BFL's protocol."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fake_bfl import FakeBfl

from fluxserve.engines.bfl import BflClient, BflError, BflOptions
from fluxserve.errors import TaskKilled


@pytest.fixture
def fake() -> Iterator[FakeBfl]:
    server = FakeBfl().start()
    yield server
    server.stop()


def make_client(fake: FakeBfl, **overrides) -> BflClient:
    options = dict(
        api_key=fake.api_key,
        base_url=fake.base_url,
        poll_interval=0.01,
        poll_interval_max=0.02,
        max_wait=10.0,
        max_retries=2,
        retry_delay=0.01,
        request_timeout=5.0,
    )
    options.update(overrides)
    return BflClient(BflOptions(**options))


def no_kill(polls: int, progress: float | None) -> None:
    pass


PAYLOAD = {"prompt": "a lighthouse", "seed": 42, "output_format": "png"}


def test_submit_poll_download_png(fake: FakeBfl) -> None:
    fake.pending_polls = 3
    seen: list[int] = []
    image = make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, lambda n, p: seen.append(n))

    assert image.data.startswith(b"\x89PNG")
    assert (image.content_type, image.extension, image.request_id) == ("image/png", "png", "req-1")
    submit = fake.of("submit")
    assert [r.method + " " + r.path for r in submit] == ["POST /v1/flux-2-pro"]
    assert submit[0].headers["x-key"] == fake.api_key
    assert submit[0].body == PAYLOAD
    polls = fake.of("poll")
    assert len(polls) == 4  # 3 Pending, then Ready
    assert all(r.path == "/regional/v1/get_result?id=req-1" for r in polls)  # the polling_url, as given
    assert all(r.headers.get("x-key") == fake.api_key for r in polls)
    assert seen == [1, 2, 3]  # on_poll after every Pending answer
    delivery = fake.of("delivery")
    assert len(delivery) == 1 and "x-key" not in delivery[0].headers  # the key never goes to delivery


def test_jpeg_output_is_sniffed_as_jpeg(fake: FakeBfl) -> None:
    image = make_client(fake).generate(
        "/v1/flux-pro-1.1-ultra", {**PAYLOAD, "output_format": "jpeg"}, no_kill
    )
    assert (image.content_type, image.extension) == ("image/jpeg", "jpeg")
    assert image.data.startswith(b"\xff\xd8")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Request Moderated", "moderation rejected the request itself"),
        ("Content Moderated", "output moderation withheld it"),
        ("Error", "BFL reported an error"),
        ("Task not found", "Task not found"),
    ],
)
def test_failure_statuses_end_polling_with_a_clear_message(fake: FakeBfl, status: str, expected: str) -> None:
    fake.final_status = status
    fake.final_details = (
        {"Moderation Reasons": ["Derivative Works Filter"]} if "Moderated" in status else None
    )
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert expected in str(info.value)
    assert info.value.status == status
    if "Moderated" in status:
        assert "Derivative Works Filter" in str(info.value)
        assert "safetyTolerance" in str(info.value)
    assert fake.of("delivery") == []
    assert len(fake.of("poll")) == 3  # stopped at the failure status


def test_content_moderation_says_it_was_the_output_side(fake: FakeBfl) -> None:
    fake.final_status = "Content Moderated"
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "not the prompt" in str(info.value)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(401, "BFL_API_KEY"), (403, "BFL_API_KEY"), (402, "no credits left")],
)
def test_account_errors_on_submit(fake: FakeBfl, code: int, expected: str) -> None:
    fake.fail("submit", code)
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert expected in str(info.value) and f"HTTP {code}" in str(info.value)
    assert len(fake.of("submit")) == 1  # not retried
    assert fake.of("poll") == []


def test_wrong_key_is_rejected_by_the_server(fake: FakeBfl) -> None:
    with pytest.raises(BflError) as info:
        make_client(fake, api_key="wrong-key-123").generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "HTTP 403" in str(info.value) and "wrong-key-123" not in str(info.value)


def test_422_shows_bfls_detail_with_the_tools_field_name(fake: FakeBfl) -> None:
    detail = [{"loc": ["body", "safety_tolerance"], "msg": "Input should be less than or equal to 5"}]
    fake.fail("submit", 422, {"detail": detail})
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "HTTP 422" in str(info.value)
    assert "safetyTolerance: Input should be less than or equal to 5" in str(info.value)


def test_429_is_retried_with_backoff_then_succeeds(fake: FakeBfl) -> None:
    fake.fail("submit", 429, {"detail": "Too many active tasks"})
    fake.fail("poll", 429)
    sleeps: list[float] = []
    client = make_client(fake)
    client._sleep = sleeps.append  # record instead of waiting
    image = client.generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert image.data.startswith(b"\x89PNG")
    assert len(fake.of("submit")) == 2
    assert 0.01 in sleeps  # the first retry delay


def test_429_retries_are_bounded(fake: FakeBfl) -> None:
    for _ in range(5):
        fake.fail("submit", 429, {"detail": "Too many active tasks"}, {"retry-after": "0"})
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "HTTP 429" in str(info.value) and "rate-limiting" in str(info.value)
    assert len(fake.of("submit")) == 3  # 1 + max_retries


def test_retry_delays_grow_exponentially_and_honour_retry_after(fake: FakeBfl) -> None:
    client = make_client(fake, retry_delay=1.0, retry_delay_max=30.0)
    assert [client._retry_delay(n, None) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert client._retry_delay(0, "7") == 7.0
    assert client._retry_delay(6, None) == 30.0


def test_server_error_is_retried(fake: FakeBfl) -> None:
    fake.fail("poll", 503)
    image = make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert image.extension == "png"


def test_dropped_connection_while_polling_is_retried(fake: FakeBfl) -> None:
    fake.drop("poll", 2)
    image = make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert image.extension == "png"
    assert len(fake.of("poll")) == 3 + 2


def test_dropped_connection_on_submit_is_retried(fake: FakeBfl) -> None:
    fake.drop("submit", 1)
    image = make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert image.extension == "png"
    assert len(fake.of("submit")) == 2


def test_network_errors_fail_after_bounded_retries(fake: FakeBfl) -> None:
    fake.drop("poll", 10)
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "Could not reach BFL" in str(info.value) and "3 attempt(s)" in str(info.value)
    assert len(fake.of("poll")) == 3


def test_unreachable_host_fails_with_network_message() -> None:
    server = FakeBfl().start()
    base = server.base_url
    server.stop()  # nothing listens there any more
    client = BflClient(BflOptions(api_key="k-secret", base_url=base, max_retries=1, retry_delay=0.01))
    with pytest.raises(BflError) as info:
        client.generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "Could not reach BFL" in str(info.value) and "2 attempt(s)" in str(info.value)


def test_still_pending_after_max_wait_fails(fake: FakeBfl) -> None:
    fake.pending_polls = 10_000
    with pytest.raises(BflError) as info:
        make_client(fake, max_wait=0.1).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "did not finish" in str(info.value) and "Pending" in str(info.value)


def test_expired_download_link(fake: FakeBfl) -> None:
    fake.delivery_status = 403
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert "download link" in str(info.value) and "expired" in str(info.value)


def test_kill_while_polling_stops_polling(fake: FakeBfl) -> None:
    fake.pending_polls = 10_000

    def kill_on_second_poll(polls: int, progress: float | None) -> None:
        if polls == 2:
            raise TaskKilled("killed")

    with pytest.raises(TaskKilled):
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, kill_on_second_poll)
    assert len(fake.of("poll")) == 2
    assert fake.of("delivery") == []


def test_key_is_sent_only_to_the_api_host_and_its_siblings() -> None:
    client = BflClient(BflOptions(api_key="k", base_url="https://api.bfl.ai"))
    assert client._may_receive_key("https://api.bfl.ai/v1/get_result?id=1")
    assert client._may_receive_key("https://api.us1.bfl.ai/v1/get_result?id=1")
    assert not client._may_receive_key("https://evil.example/v1/get_result?id=1")
    assert not client._may_receive_key("https://bfl.ai.evil.example/x")


def test_key_never_appears_in_logs_or_errors(fake: FakeBfl, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail("submit", 429)
    fake.drop("poll", 1)
    make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    # an error whose detail echoes the key is redacted too
    fake.fail("submit", 422, {"detail": f"bad key {fake.api_key}"})
    with pytest.raises(BflError) as info:
        make_client(fake).generate("/v1/flux-2-pro", PAYLOAD, no_kill)
    assert fake.api_key not in str(info.value) and "[redacted]" in str(info.value)
    assert caplog.records, "expected the client to log its retries"
    assert fake.api_key not in caplog.text
    assert all(fake.api_key not in str(record.args) for record in caplog.records)
