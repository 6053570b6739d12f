"""Poison inputs (issue #17) against a real server: each is refused at the door with a clear error
(HTTP 200, ``result: false``, code 0, the field named), nothing stored can break a read, the body
limit holds for every framing, and uploads never come back as active content."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from websockets.sync.client import connect

from fluxserve.api.errors import INTERNAL_ERROR
from tests.support.files import image_bytes
from tests.support.live import socket_url
from tests.support.receiver import callback_receiver
from tests.support.service import Service, signed_headers

KREA = "black-forest-labs/FLUX.1-Krea-dev"
LORA = "wiro/text-to-image-flux-lora-fast"
KONTEXT = "wiro/flux_kontext_dev_with_2_image"
GOOD = {"prompt": "a red fox", "steps": 4, "width": 64, "height": 64}
SURROGATE = '"\\udc00 hi"'  # JSON text for a lone low surrogate, as a half-cut emoji gives


def fill(template: str, value: str) -> str:
    """``template`` with its ``@`` replaced by ``value`` (JSON is full of braces)."""
    return template.replace("@", value)


def refused(response: httpx.Response, field: str) -> str:
    """Assert the Wiro-shaped refusal of a bad field; the message naming it."""
    assert response.status_code == 200, (response.status_code, response.text)
    payload = response.json()
    assert payload["result"] is False, payload
    messages = [error["message"] for error in payload["errors"]]
    assert all(error["code"] == 0 for error in payload["errors"]), payload
    assert INTERNAL_ERROR not in " ".join(messages), messages
    named = [
        m
        for m in messages
        if f"[{field}]" in m or f"[{field}." in m or f"[{field}[" in m or f" {field} " in m
    ]
    assert named, (field, messages)
    return named[0]


def raw_post(service: Service, path: str, text: str, **headers: str) -> httpx.Response:
    """POST ``text`` exactly as given (lone-surrogate escapes cannot be made with json=)."""
    all_headers = {**service.headers(), "Content-Type": "application/json", **headers}
    return httpx.post(f"{service.base_url}{path}", content=text.encode(), headers=all_headers, timeout=60)


# --- 1. lone surrogates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            f"/v1/Run/{KREA}",
            fill('{"prompt": @, "steps": 4, "width": 64, "height": 64}', SURROGATE),
            "prompt",
        ),
        (f"/v1/Run/{KREA}", '{"prompt": "ok", "callbackUrl": "http://127.0.0.1/\\ud83d"}', "callbackUrl"),
        (
            f"/v1/Run/{KREA}",
            fill('{"prompt": "ok", "unknownField": {"deep": [@]}}', SURROGATE),
            "unknownField",
        ),
        ("/v1/Task/Detail", fill('{"taskid": @}', SURROGATE), "taskid"),
        ("/v1/Task/Detail", fill('{"tasktoken": @}', SURROGATE), "tasktoken"),
        ("/v1/Task/List", fill('{"start": @}', SURROGATE), "start"),
        ("/v1/Task/Cancel", fill('{"socketaccesstoken": @}', SURROGATE), "socketaccesstoken"),
        ("/v1/Task/Kill", fill('{"taskid": @}', SURROGATE), "taskid"),
        ("/v1/Tool/Detail", fill('{"slug": @}', SURROGATE), "slug"),
        ("/v1/Tool/List", fill('{"x": @}', SURROGATE), "x"),
        ("/v1/File/Upload", fill('{"file": @}', SURROGATE), "file"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_lone_surrogates_are_refused_at_every_endpoint(
    queue_only_service: Service, path: str, body: str, field: str
) -> None:
    message = refused(raw_post(queue_only_service, path, body), field)
    assert "surrogate" in message


def test_a_stored_lone_surrogate_breaks_no_read_and_no_callback(queue_only_service: Service) -> None:
    """Rows written before the door check (JSON columns kept the text) read and call back fine."""
    service = queue_only_service
    store = service.open_store()
    project = store.project_by_key(service.api_key)
    with callback_receiver() as receiver:
        poisoned = store.create_task(
            project.id, KREA, {"prompt": "\udc00 hi"}, {"prompt": "\udc00 hi"}, callbackurl=receiver.url
        )
        detail = service.post("/v1/Task/Detail", json={"taskid": poisoned.taskid})
        assert (
            detail.status_code == 200 and detail.json()["tasklist"][0]["parameters"]["prompt"] == "\ufffd hi"
        )
        listed = service.post("/v1/Task/List", json={"limit": 5})
        assert listed.status_code == 200 and listed.json()["result"] is True
        service.post("/v1/Task/Cancel", json={"taskid": poisoned.taskid})
        assert receiver.event.wait(30), service.log()[-2000:]
        good = service.run(KREA, **GOOD, callbackUrl=receiver.url)["taskid"]
        receiver.event.clear()
        service.post("/v1/Task/Cancel", json={"taskid": good})
        assert receiver.event.wait(30), service.log()[-2000:]
    assert [r["json"]["tasklist"][0]["id"] for r in receiver.received] == [poisoned.taskid, good]


# --- 2. callback URLs that can never be called ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/cb\u0001x", "http://[::1", "https://127.0.0.1:99999/cb", "HTTP://", "http://a b/"],
)
def test_an_uncallable_callback_url_is_refused_at_run(queue_only_service: Service, url: str) -> None:
    response = queue_only_service.post(f"/v1/Run/{KREA}", json={**GOOD, "callbackUrl": url})
    refused(response, "callbackUrl")


def test_an_uppercase_scheme_callback_is_delivered(queue_only_service: Service) -> None:
    with callback_receiver() as receiver:
        url = receiver.url.replace("http://", "HTTP://")
        taskid = queue_only_service.run(KREA, **GOOD, callbackUrl=url)["taskid"]
        queue_only_service.post("/v1/Task/Cancel", json={"taskid": taskid})
        assert receiver.event.wait(30)


# --- 3. the body limit ---------------------------------------------------------------------------


def _chunked_request(
    port: int, path: str, headers: dict[str, str], chunk: bytes, total: int
) -> tuple[int, int]:
    """Send a chunked body of up to ``total`` bytes until the server answers; (status, bytes sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Transfer-Encoding: chunked"]
        head += [f"{key}: {value}" for key, value in headers.items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        conn.settimeout(0.0)
        sent, answer = 0, b""
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while sent < total and not answer:
            try:
                conn.sendall(frame)
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                answer = conn.recv(65536)
            except BlockingIOError:
                continue
        conn.settimeout(30)
        while b"\r\n\r\n" not in answer:
            more = conn.recv(65536)
            if not more:
                break
            answer += more
    return int(answer.split(b" ", 2)[1]), sent


@pytest.fixture(scope="module")
def small_limit_service(tmp_path_factory, tiny_weights_dir):
    server = Service(
        tmp_path_factory.mktemp("limit"),
        weights=str(tiny_weights_dir),
        env_overrides={"FLUXSERVE_WORKERS": "0", "FLUXSERVE_MAX_UPLOAD_BYTES": str(2**20)},
    ).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=xyz",
        "application/json",
        "application/x-www-form-urlencoded",
        "image/png",
    ],
)
def test_a_chunked_body_over_the_limit_is_refused_early(
    small_limit_service: Service, content_type: str
) -> None:
    """256 MiB offered in 64 KiB chunks with a 1 MiB limit: 413 long before the end, nothing spooled."""
    service = small_limit_service
    prefix = b'--xyz\r\nContent-Disposition: form-data; name="inputImage"; filename="a.png"\r\n\r\n'
    headers = {**service.headers(), "Content-Type": content_type}
    with socket.create_connection(("127.0.0.1", service.port)):
        pass
    status, sent = _chunked_request(
        service.port, f"/v1/Run/{KONTEXT}", headers, prefix + b"\0" * (64 * 1024), total=256 * 2**20
    )
    assert status == 413
    assert sent < 64 * 2**20  # it answered while most of the body was still unsent
    assert not list((service.data_dir / "files").rglob("*.png"))


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_many_parts_under_the_limit_each_still_count_towards_it(
    small_limit_service: Service, chunked
) -> None:
    """16 parts of 100 kB with a 1 MiB limit: each part fits, the body does not."""
    files = [("inputImage", (f"{i}.png", b"\0" * 100_000, "image/png")) for i in range(16)]
    url = f"{small_limit_service.base_url}/v1/Run/{KONTEXT}"
    prepared = httpx.Request("POST", url, data={"prompt": "x"}, files=files)
    body = prepared.read()
    headers = {**small_limit_service.headers(), "Content-Type": prepared.headers["content-type"]}
    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = httpx.post(url, content=content, headers=headers, timeout=60)
    assert response.status_code == 413 and response.json()["result"] is False
    assert "limit" in response.json()["errors"][0]["message"]


# --- 4. odd input that used to answer 500 --------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "body", "field"),
    [
        (KREA, fill('{"prompt": "x", "steps": @}', ("9" * 400)), "steps"),
        (KREA, fill('{"prompt": "x", "scale": @}', ("9" * 400)), "scale"),
        (KREA, fill('{"prompt": "x", "scale": @}', ("9" * 5000)), "scale"),
        (KREA, fill('{"prompt": "x", "seed": @}', ("9" * 5000)), "seed"),
        (KREA, fill('{"prompt": "x", "width": "@"}', ("9" * 5000)), "width"),
        (KREA, fill('{"prompt": "x", "height": @.5}', ("9" * 400)), "height"),
        (KREA, '{"prompt": "x", "callbackUrl": "http://[::1"}', "callbackUrl"),
        (
            LORA,
            '{"prompt": "x", "selectedLoraModelPrivateUrl": "http://[::1"}',
            "selectedLoraModelPrivateUrl",
        ),
        (KONTEXT, '{"prompt": "x", "inputImageUrl": "http://[::1", "inputImageUrl2": "a"}', "inputImageUrl"),
        (KREA, fill('{"prompt": "x", "deep": @}', ("[" * 40 + "]" * 40)), "deep"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_odd_values_are_clear_field_errors(
    queue_only_service: Service, tool: str, body: str, field: str
) -> None:
    refused(raw_post(queue_only_service, f"/v1/Run/{tool}", body), field)


def test_huge_numbers_elsewhere_and_deep_json_are_clear_errors(queue_only_service: Service) -> None:
    refused(raw_post(queue_only_service, "/v1/Task/List", fill('{"limit": @}', ("1" * 5000))), "limit")
    refused(raw_post(queue_only_service, "/v1/Task/List", fill('{"start": @}', ("1" * 400))), "start")
    deep = raw_post(queue_only_service, f"/v1/Run/{KREA}", '{"a": ' + "[" * 1000 + "]" * 1000 + "}")
    assert deep.status_code == 200 and deep.json()["result"] is False
    assert "nested" in deep.json()["errors"][0]["message"] and deep.json()["errors"][0]["code"] == 0


@pytest.mark.parametrize("nonce", ["\xb2", "1\xb2", "\u0663\u0663", "12\u00a0"])
def test_a_nonce_with_non_ascii_digits_is_an_auth_error(queue_only_service: Service, nonce: str) -> None:
    headers = {**signed_headers(queue_only_service.api_key, queue_only_service.api_secret, nonce=nonce)}
    encoded = [(key.encode(), value.encode("latin-1", "replace")) for key, value in headers.items()]
    response = httpx.post(f"{queue_only_service.base_url}/v1/Task/List", headers=encoded, json={})
    assert response.status_code == 401 and response.json()["result"] is False
    assert "x-nonce" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (fill('{"type": "task_info", "tasktoken": @}', SURROGATE), "surrogate"),
        ("[" * 1000 + "]" * 1000, "nested"),
        (fill('{"type": "task_info", "tasktoken": "x", "n": @}', ("[" * 200 + "]" * 200)), "nested"),
        (fill('{"type": "task_info", "tasktoken": @}', ("1" * 5000)), "token"),
    ],
    ids=["surrogate", "deep-1000", "deep-200", "digits-5000"],
)
def test_bad_socket_messages_get_an_error_frame(
    queue_only_service: Service, text: str, fragment: str
) -> None:
    with connect(socket_url(queue_only_service), open_timeout=10) as ws:
        ws.send(text)
        frame = json.loads(ws.recv(timeout=30))
    assert frame["result"] is False and fragment in frame["errors"][0]["message"], frame


# --- 6. uploads are never served as active content -----------------------------------------------


def test_uploads_are_served_as_proven_images_or_as_attachments(queue_only_service: Service) -> None:
    png = image_bytes((8, 8), (1, 2, 3), "PNG")
    html = b"<html><script>alert(document.domain)</script></html>"
    answer = queue_only_service.post(
        "/v1/File/Upload",
        files=[
            ("file", ("page.html", html, "text/html")),
            ("file", ("pic.png", png, "text/html")),  # an image declared wrongly
            ("file", ("fake.png", b"GIF89a-not-really" + html, "image/png")),
        ],
    ).json()
    assert answer["result"] is True
    page, pic, fake = answer["list"]
    assert page["contenttype"] == "application/octet-stream" and pic["contenttype"] == "image/png"
    served = httpx.get(page["url"])
    assert served.content == html
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["x-content-type-options"] == "nosniff"
    image = httpx.get(pic["url"])
    assert image.headers["content-type"] == "image/png" and "content-disposition" not in image.headers
    assert image.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(fake["url"]).headers["content-type"] == "image/gif"  # the bytes decide, still inert


def test_an_upload_stored_with_its_declared_type_by_an_older_version_is_served_safely(
    queue_only_service: Service,
) -> None:
    answer = queue_only_service.post("/v1/File/Upload", files={"file": ("x.html", b"<script>", "text/html")})
    item = answer.json()["list"][0]
    store = queue_only_service.open_store()
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE uploads SET contenttype = 'text/html' WHERE accesskey = ?", (item["accesskey"],)
        )
    served = httpx.get(item["url"])
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")


# --- 7. several parts under one name ------------------------------------------------------------


def test_repeated_file_parts_are_all_kept_by_upload_and_refused_by_run(queue_only_service: Service) -> None:
    png = image_bytes((8, 8), (9, 9, 9), "PNG")
    parts = [("file", (f"{i}.png", png, "image/png")) for i in range(3)]
    uploaded = queue_only_service.post("/v1/File/Upload", files=parts).json()
    assert [item["name"] for item in uploaded["list"]] == ["0.png", "1.png", "2.png"]
    run = queue_only_service.post(
        f"/v1/Run/{KONTEXT}",
        data={"prompt": "x"},
        files=[("inputImage", (f"{i}.png", png, "image/png")) for i in range(3)],
    )
    assert "sent as 3 file parts" in refused(run, "inputImage")


def test_repeated_text_parts_keep_every_value(queue_only_service: Service) -> None:
    fields = [("prompt", (None, "a")), ("prompt", (None, "b")), ("steps", (None, "4"))]
    run = queue_only_service.post(f"/v1/Run/{KREA}", files=fields)
    assert "must be text, got list" in refused(run, "prompt")  # both values reached validation


def test_a_refused_callback_shows_in_detail(make_service) -> None:
    """Private addresses refused (the strict default): the callback is never sent, and Detail says why."""
    service: Service = make_service(FLUXSERVE_WORKERS="0", FLUXSERVE_ALLOW_PRIVATE_URLS="false")
    with callback_receiver() as receiver:
        taskid = service.run(KREA, **GOOD, callbackUrl=receiver.url)["taskid"]
        service.post("/v1/Task/Cancel", json={"taskid": taskid})
        deadline = time.monotonic() + 30
        while "callbackUrl: not called" not in service.detail(taskid)["debugoutput"]:
            assert time.monotonic() < deadline, service.detail(taskid)
            time.sleep(0.1)
    assert receiver.received == []
    assert "127.0.0.1" in service.detail(taskid)["debugoutput"]
