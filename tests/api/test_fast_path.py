"""The hot path (api/fast.py) answers Task/Detail and Task/List exactly as the FastAPI routes do.

Real multipart bodies (with a boundary) still go through the FastAPI routes, so the same request sent
as JSON (hot path) and as multipart (FastAPI) must get the same status, the same bytes and the same
``X-Content-Type-Options`` header — for answers and for every documented error these endpoints give.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from fluxserve.api.fast import FastPath
from tests.support.service import LOOPBACK_TLS, Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"
SMALL = {"prompt": "a red fox", "steps": "2", "width": "64", "height": "64"}


def _both_ways(service: Service, path: str, fields: dict[str, str], headers: dict[str, str]):
    """The answer to ``fields`` sent as JSON (hot path) and as real multipart (FastAPI's route)."""
    url = f"{service.base_url}{path}"
    as_json = httpx.post(url, json=fields, headers=headers, verify=LOOPBACK_TLS)
    multipart = httpx.Request("POST", url, data=fields, files={"unused": ("a.txt", b"x", "text/plain")})
    as_form = httpx.post(
        url,
        content=multipart.read(),
        headers={**headers, "content-type": multipart.headers["content-type"]},
        verify=LOOPBACK_TLS,
    )
    return as_json, as_form


def _cases(service: Service) -> dict[str, tuple[str, dict[str, str], dict[str, str]]]:
    task = service.run(KREA, **SMALL)
    signed = service.headers()
    return {
        "detail by taskid": ("/v1/Task/Detail", {"taskid": task["taskid"]}, signed),
        "detail by token": ("/v1/Task/Detail", {"tasktoken": task["socketaccesstoken"]}, signed),
        "list": ("/v1/Task/List", {"start": "0", "limit": "5"}, signed),
        "list, bad limit": ("/v1/Task/List", {"limit": "0"}, signed),
        "unknown task": ("/v1/Task/Detail", {"taskid": "987654321"}, signed),
        "missing identifier": ("/v1/Task/Detail", {}, signed),
        "api key not found": ("/v1/Task/Detail", {"taskid": "1"}, {**signed, "x-api-key": "nope"}),
        "signature required": ("/v1/Task/Detail", {"taskid": "1"}, {"x-api-key": signed["x-api-key"]}),
        "invalid signature": ("/v1/Task/Detail", {"taskid": "1"}, {**signed, "x-signature": "0" * 64}),
        "bad nonce": ("/v1/Task/List", {}, {**signed, "x-nonce": "soon"}),
    }


CASES = [
    "detail by taskid",
    "detail by token",
    "list",
    "list, bad limit",
    "unknown task",
    "missing identifier",
    "api key not found",
    "signature required",
    "invalid signature",
    "bad nonce",
]

AUTH_FAILURES = ("api key not found", "signature required", "invalid signature", "bad nonce")


@pytest.mark.parametrize("case", CASES)
def test_the_hot_path_answers_as_the_fastapi_route_does(queue_only_service: Service, case: str) -> None:
    path, fields, headers = _cases(queue_only_service)[case]
    fast, routed = _both_ways(queue_only_service, path, fields, headers)
    assert fast.status_code == routed.status_code, (fast.text, routed.text)
    assert fast.json() == routed.json()
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["x-content-type-options"] == routed.headers["x-content-type-options"] == "nosniff"
    body = fast.json()
    if case in ("detail by taskid", "detail by token", "list"):
        assert body["result"] is True and body["tasklist"], body
    else:
        assert body["result"] is False and body["errors"][0]["message"], body
    assert fast.status_code == (401 if case in AUTH_FAILURES else 200)


def test_the_hot_path_refuses_bad_bodies_in_wiros_shape(queue_only_service: Service) -> None:
    url = f"{queue_only_service.base_url}/v1/Task/Detail"
    headers = {**queue_only_service.headers(), "content-type": "application/json"}
    broken = httpx.post(url, content=b'{"taskid": ', headers=headers)
    assert broken.status_code == 200 and broken.headers["x-content-type-options"] == "nosniff"
    assert broken.json()["result"] is False
    assert broken.json()["errors"][0]["message"].startswith(
        "Request parameters are invalid. Request body is not"
    )
    listed = httpx.post(url, content=b"[1, 2]", headers=headers).json()
    assert listed["errors"][0]["message"].endswith("must be a JSON object, got list.")


def test_a_repeated_detail_poll_sees_the_task_change(queue_only_service: Service) -> None:
    """The encoded answer is reused only while the task is unchanged: a Cancel shows at once."""
    taskid = queue_only_service.run(KREA, **SMALL)["taskid"]
    assert queue_only_service.detail(taskid)["status"] == "task_queue"
    queue_only_service.post("/v1/Task/Cancel", json={"taskid": taskid})
    assert queue_only_service.detail(taskid)["status"] == "task_cancel"
    assert queue_only_service.detail(taskid)["status"] == "task_cancel"


def test_a_chunked_detail_body_over_the_limit_is_413(tmp_path, tiny_weights_dir) -> None:
    service = Service(
        tmp_path,
        weights=str(tiny_weights_dir),
        env_overrides={"FLUXSERVE_WORKERS": "0", "FLUXSERVE_MAX_UPLOAD_BYTES": "1000"},
    ).start()
    try:
        headers = [f"{key}: {value}" for key, value in service.headers().items()]
        head = ["POST /v1/Task/Detail HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked", *headers]
        chunk = b'{"taskid": "' + b"1" * 1500 + b'"}'
        with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + f"{len(chunk):x}\r\n".encode() + chunk)
            conn.sendall(b"\r\n0\r\n\r\n")
            answer = _read_answer(conn)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"x-content-type-options: nosniff" in answer.lower()
        assert b"larger than the limit of 1000 bytes" in answer
    finally:
        service.stop()


def _read_answer(conn: socket.socket) -> bytes:
    """One whole HTTP answer: the server may send its head and its body in separate writes."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = conn.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


# --- which requests take the hot path (no server needed) ----------------------------------------


class _Services:
    max_upload_bytes = 1000


def _scope(method: str = "POST", path: str = "/v1/Task/Detail", **headers: str) -> dict:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "method": method, "path": path, "headers": raw}


@pytest.mark.parametrize(
    ("scope", "taken"),
    [
        (_scope(content_type="application/json"), True),
        (_scope(path="/v1/Task/List"), True),
        (_scope(content_type="multipart/form-data"), True),  # the seeds' curl: JSON under this header
        (_scope(content_type="multipart/form-data; boundary=xyz"), False),
        (_scope(content_type="Multipart/Form-Data; BOUNDARY=xyz"), False),
        (_scope(content_length="1001"), False),  # RequestGuard answers 413 the normal way
        (_scope(content_length="1000"), True),
        (_scope(method="GET"), False),
        (_scope(path="/v1/Task/Cancel"), False),
        (_scope(path="/v1/Task/Detail/"), False),
        ({"type": "websocket", "path": "/v1/Task/Detail", "headers": []}, False),
    ],
)
def test_only_plain_posts_to_detail_and_list_take_the_hot_path(scope: dict, taken: bool) -> None:
    fast = FastPath(_Services())  # type: ignore[arg-type]
    assert (fast.route(scope) is not None) is taken


def test_a_client_gone_before_its_body_gets_no_answer() -> None:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    fast = FastPath(_Services())  # type: ignore[arg-type]
    scope = _scope()
    asyncio.run(fast.serve(fast.route(scope), scope, receive, send))
    assert sent == []


def test_no_access_log_line_per_poll_unless_asked(queue_only_service: Service) -> None:
    """FLUXSERVE_ACCESS_LOG is off by default: a poll writes nothing to the server's log."""
    taskid = queue_only_service.run(KREA, **SMALL)["taskid"]
    for _ in range(3):
        queue_only_service.detail(taskid)
    assert "/v1/Task/Detail HTTP/1.1" not in queue_only_service.log()
