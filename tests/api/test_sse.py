"""GET /v1/Task/Events/{token}: the socket's frames as Server-Sent Events, against a real server."""

from __future__ import annotations

import httpx

from tests.support.live import STATUS_ORDER, SseEvent, follow, is_progress, parse_sse, run_krea, statuses
from tests.support.service import Service


def stream(service: Service, token: str) -> tuple[int, str, list[SseEvent]]:
    url = f"{service.base_url}/v1/Task/Events/{token}"
    with httpx.stream("GET", url, headers={"Origin": "https://app.example"}, timeout=120) as response:
        events = list(parse_sse(response.iter_lines()))
        assert response.headers["access-control-allow-origin"] == "*"  # EventSource from any page
        return response.status_code, response.headers.get("content-type", ""), events


def test_sse_streams_the_socket_frames_in_order_and_ends_after_the_terminal_one(service: Service) -> None:
    run = run_krea(service, steps=20, size=128)
    status, content_type, events = stream(service, run["socketaccesstoken"])

    assert status == 200 and content_type.startswith("text/event-stream")
    frames = [e.data for e in events]
    assert [e.event for e in events] == [f["type"] for f in frames]
    assert statuses(frames) == STATUS_ORDER
    progress = [f["message"] for f in frames if is_progress(f)]
    assert progress and {p["stepTotal"] for p in progress} == {"20"} and progress[-1]["stepCurrent"] == "20"
    assert [e.id for e in events] == [str(n) for n in range(1, len(events) + 1)]
    outputs = frames[-1]["message"]
    assert [o["url"] for o in outputs] == [o["url"] for o in service.wait(run["taskid"])["outputs"]]


def test_sse_after_completion_matches_the_socket(service: Service) -> None:
    run = run_krea(service, steps=2)
    service.wait(run["taskid"])
    _status, _type, events = stream(service, run["socketaccesstoken"])
    acknowledgement, *frames = follow(service, run["socketaccesstoken"])
    assert acknowledgement["type"] == "task_info"  # the socket's alone: SSE needs no registration
    assert [e.data for e in events] == frames
    assert events[-1].event == "task_postprocess_end" and events[-1].data["message"]


def test_sse_kill_mid_run_ends_with_task_cancel(service: Service) -> None:
    run = run_krea(service, steps=100, size=256)
    url = f"{service.base_url}/v1/Task/Events/{run['socketaccesstoken']}"
    events = []
    with httpx.stream("GET", url, timeout=120) as response:
        for event in parse_sse(response.iter_lines()):
            events.append(event)
            if is_progress(event.data) and len([e for e in events if is_progress(e.data)]) == 1:
                killed = service.post("/v1/Task/Kill", json={"taskid": run["taskid"]}).json()
                assert killed["result"] is True, killed
    assert events[-1].event == "task_cancel"
    assert "task_postprocess_end" not in [e.event for e in events]


def test_sse_unknown_token_is_a_404_with_an_error_event(service: Service) -> None:
    status, content_type, events = stream(service, "no-such-token")
    assert status == 404 and content_type.startswith("text/event-stream")
    assert len(events) == 1 and events[0].event == "error"
    assert events[0].data["result"] is False and "no-such-token" in events[0].data["message"]


def test_sse_reconnection_to_an_ended_task_is_told_to_stop(service: Service) -> None:
    """EventSource reconnects when a stream ends, sending Last-Event-ID; 204 makes it stop."""
    run = run_krea(service, steps=2)
    service.wait(run["taskid"])
    response = httpx.get(
        f"{service.base_url}/v1/Task/Events/{run['socketaccesstoken']}",
        headers={"Last-Event-ID": "12"},
        timeout=30,
    )
    assert response.status_code == 204 and response.content == b""


def test_sse_two_clients_and_a_stalled_one(service: Service) -> None:
    """A streaming client that stops reading does not hold the task back; it still gets the end."""
    run = run_krea(service, steps=100, size=256)
    url = f"{service.base_url}/v1/Task/Events/{run['socketaccesstoken']}"
    with httpx.stream("GET", url, timeout=120) as stalled:
        lines = stalled.iter_lines()
        assert next(parse_sse(lines)).event == "task_queue"  # then stop reading for a while
        _status, _type, live = stream(service, run["socketaccesstoken"])
        assert service.wait(run["taskid"])["status"] == "task_postprocess_end"
        rest = list(parse_sse(lines))
    assert statuses([e.data for e in live]) == STATUS_ORDER
    assert rest[-1].data == live[-1].data
