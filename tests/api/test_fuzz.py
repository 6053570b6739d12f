"""Property-based fuzz pass over every endpoint the app's OpenAPI schema lists, and the socket.

Hypothesis builds bodies in every format the API accepts (JSON, the seeds' boundary-less
multipart, form fields, real multipart with file parts, raw bytes) from field names the tools and
routes use, filled with ordinary and poisonous values (lone surrogates, NUL, 400- and 5,000-digit
numbers, deep nesting, malformed URLs), plus odd path parameters and auth headers. The property:
no answer is a 5xx or an internal error (which Wiro's mapping answers with HTTP 200, so the
message and the server log are checked too), the server stays up, and afterwards a good task's
callback is still delivered (the callback thread survived everything the fuzzed tasks left behind).

Every URL a fuzzed request can make the server call points at 127.0.0.1: callback URLs are drawn
from a loopback-only strategy, and the server runs no worker, so image and LoRA URLs are never
fetched.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from fluxserve.api.errors import INTERNAL_ERROR
from tests.support.live import socket_url
from tests.support.receiver import CallbackReceiver, callback_receiver
from tests.support.service import LOOPBACK_TLS, Service, signed_headers

KREA = "black-forest-labs/FLUX.1-Krea-dev"
ROUTE_FIELDS = [
    "taskid", "tasktoken", "socketaccesstoken", "uuid", "id", "start", "limit",
    "slug", "slugowner", "slugproject", "tool", "file",
]  # fmt: skip
OPENAI_FIELDS = ["model", "n", "size", "quality", "response_format", "stream", "output_format", "image"]
CALLBACK_FIELDS = {"callbackurl", "callback_url"}
POISON_TEXT = [
    "\udc00 hi", "\ud83d", "a\x00b", "9" * 400, "-" + "9" * 5000, "1e999", "NaN", "-0", "\xb2", "\u0663",
    "http://[::1", "http://[::1]:99999/x", "HTTP://127.0.0.1:1/\x01", "ftp://127.0.0.1/", "", " ",
    "[1,2", '["678", {"a": 1}]', "678,1328,zzz", "../../etc/passwd", "room.jpg", "\u202e", "🦊",
]  # fmt: skip
AUTH_OVERRIDES = [
    ("x-api-key", "\xe9\xe9"), ("x-api-key", ""), ("x-api-key", "KEY\xa0"), ("x-signature", "(stdin)= zz"),
    ("x-signature", "\xff" * 64), ("Authorization", "Bearer \xe9"), ("Authorization", "Basic KEY"),
    ("Authorization", "Bearer"), ("x-nonce", "1" * 400),
]  # fmt: skip
RAW_NUMBERS = ["9" * 400, "-" + "9" * 5000, "1" + "0" * 400 + ".5", "1e99999", "-0.0"]


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory, tiny_weights_dir) -> Iterator[tuple[Service, CallbackReceiver]]:
    server = Service(
        tmp_path_factory.mktemp("fuzz"),
        weights=str(tiny_weights_dir),
        env_overrides={
            "FLUXSERVE_WORKERS": "0",
            "FLUXSERVE_MAX_UPLOAD_BYTES": str(256 * 1024),
            "FLUXSERVE_OPENAI_WAIT_SECONDS": "0.5",  # no worker: an OpenAI-style request gives up quickly
        },
    ).start()
    with callback_receiver() as receiver:
        yield server, receiver
    server.stop()


@pytest.fixture(scope="module")
def endpoints(fuzz_target) -> list[tuple[str, str]]:
    server, _ = fuzz_target
    schema = httpx.get(f"{server.base_url}/openapi.json").json()
    found = [(method.upper(), path) for path, item in schema["paths"].items() for method in item]
    assert ("POST", "/v1/Run/{owner}/{tool}") in found and len(found) >= 10, found
    assert ("GET", "/metrics") in found, found  # the Prometheus endpoint is fuzzed too
    assert all(path.startswith(("/v1", "/healthz", "/metrics")) for _, path in found), found
    return found


@pytest.fixture(scope="module")
def input_names(fuzz_target) -> list[str]:
    server, _ = fuzz_target
    tools = server.post("/v1/Tool/List", json={}).json()["tool"]
    names = {item["id"] for tool in tools for group in tool["parameters"] for item in group["items"]}
    return sorted(names | {"inputImage", "inputImage2", "selectedLoraModelPrivateUrl"})


class Raw(str):
    """A number written into the JSON text as is (json.dumps cannot print a 5,000-digit int)."""


def values(receiver_url: str) -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
        | st.sampled_from(POISON_TEXT)
        | st.sampled_from(RAW_NUMBERS).map(Raw)
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
        ),
        max_leaves=6,
    )


def callback_urls(receiver_url: str) -> st.SearchStrategy[str]:
    """Only loopback destinations (or values that name no host at all)."""
    base = receiver_url.rsplit("/", 1)[0]
    return (
        st.builds(lambda tail: f"{base}/{tail}", st.text(max_size=10))
        | st.builds(lambda tail: f"HTTP://127.0.0.1:1/{tail}", st.text(alphabet=string.printable, max_size=5))
        | st.sampled_from(
            ["http://[::1", "http://127.0.0.1:99999/", "http://", "not a url", "\udc00", receiver_url]
        )
    )


def to_json_text(fields: dict[str, Any]) -> str:
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    text = json.dumps(swap(fields))  # ensure_ascii: lone surrogates go out as \\udXXX escapes
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{index}@@"', raw)
    return text


def flat(value: Any) -> str:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return to_json_text({"v": value})[6:-1]


@st.composite
def requests(draw, endpoints, input_names, receiver_url) -> dict[str, Any]:
    method, path = draw(st.sampled_from(endpoints))
    params = {
        "owner": draw(st.sampled_from(["black-forest-labs", "wiro", "x", "%00", "..", "%ED%B2%80"])),
        "tool": draw(
            st.sampled_from(
                [
                    "FLUX.1-Krea-dev",
                    "flux-2-pro-t2i",
                    "flux-pro-1-1-ultra",
                    "flux_kontext_dev_with_2_image",
                    "text-to-image-flux-lora-fast",
                    "nope",
                    "%00",
                ]
            )
        ),
        "accesskey": draw(st.text(alphabet=string.ascii_letters + "%.-", min_size=1, max_size=8)),
        "name": draw(st.sampled_from(["0.png", "a.txt", "%00", "..%2F..%2Fetc", "x"])),
        "token": draw(st.text(alphabet=string.ascii_letters + "%", min_size=1, max_size=8)),
    }
    url = path
    for key, value in params.items():
        url = url.replace("{" + key + "}", value)
    names = st.sampled_from(input_names + ROUTE_FIELDS + OPENAI_FIELDS) | st.text(max_size=6).filter(
        lambda name: name.lower() not in CALLBACK_FIELDS | {"callbackurl"}
    )
    fields = draw(st.dictionaries(names, values(receiver_url), max_size=6))
    if draw(st.booleans()):
        fields["callbackUrl"] = draw(callback_urls(receiver_url))
    if draw(st.integers(0, 9)) == 0:
        depth = draw(st.integers(30, 1500))
        fields["prompt"] = Raw("[" * depth + "]" * depth)
    kind = draw(st.sampled_from(["json", "seed-multipart", "form", "multipart", "raw"]))
    request: dict[str, Any] = {"method": method, "url": url}
    if kind == "json":
        request["content"] = to_json_text(fields).encode()
        request["headers"] = {"Content-Type": "application/json"}
    elif kind == "seed-multipart":
        request["content"] = to_json_text(fields).encode()
        request["headers"] = {"Content-Type": "multipart/form-data"}
    elif kind == "form":
        request["data"] = {key: flat(value) for key, value in fields.items()}
    elif kind == "multipart":
        files = [
            (
                draw(st.sampled_from(["inputImage", "inputImage2", "file", "image", "image[]", "mask"])),
                (name, data, ctype),
            )
            for name, data, ctype in draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(["a.png", "x.html", "../b", "\u00e9.jpg"]),
                        st.binary(max_size=64) | st.just(b"\x89PNG\r\n\x1a\n" + b"\0" * 32),
                        st.sampled_from(["image/png", "text/html", "application/octet-stream"]),
                    ),
                    max_size=3,
                )
            )
        ]
        request["files"] = files or [("file", ("a.txt", b"x", "text/plain"))]
        request["data"] = {flat(key): flat(value) for key, value in fields.items()}
    else:
        request["content"] = draw(st.binary(max_size=200))
        request["headers"] = {
            "Content-Type": draw(
                st.sampled_from(["application/json", "text/plain", "multipart/form-data; boundary=zz", ""])
            )
        }
    nonce = draw(st.sampled_from([None, None, None, "\xb2", "12\u00e9", "1" * 30, "-5", ""]))
    request["auth_nonce"] = nonce
    request["auth_override"] = draw(st.sampled_from([None] * 6 + AUTH_OVERRIDES))
    return request


def send(server: Service, request: dict[str, Any]) -> httpx.Response:
    request = dict(request)
    nonce = request.pop("auth_nonce")
    headers = (
        signed_headers(server.api_key, server.api_secret, nonce=nonce)
        if nonce is not None
        else server.headers()
    )
    if nonce is not None:
        headers["x-nonce"] = nonce
    headers["Authorization"] = f"Bearer {server.api_key}"  # the OpenAI-style routes' credential
    override = request.pop("auth_override")
    if override is not None:
        headers[override[0]] = override[1].replace("KEY", server.api_key)
    encoded = [(key.encode(), value.encode("latin-1", "replace")) for key, value in headers.items()]
    encoded += [(key.encode(), value.encode()) for key, value in request.pop("headers", {}).items()]
    url = request.pop("url")
    return httpx.request(
        request.pop("method"),
        f"{server.base_url}{url}",
        headers=encoded,
        timeout=httpx.Timeout(30, read=5 if "/Events/" in url else 30),
        verify=LOOPBACK_TLS,
        **request,
    )


def test_fuzzed_requests_to_every_endpoint_never_get_a_5xx(fuzz_target, endpoints, input_names) -> None:
    server, receiver = fuzz_target
    seen: dict[int, int] = {}

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(requests(endpoints, input_names, receiver.url))
    def one(request: dict[str, Any]) -> None:
        response = send(server, request)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500 and INTERNAL_ERROR not in response.text, (
            request["method"],
            request["url"],
            response.status_code,
            response.text,
        )
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if body.get("result") is False:
                assert body["errors"] and all(
                    isinstance(e["message"], str) and e["message"] for e in body["errors"]
                )

    one()
    assert server.process is not None and server.process.poll() is None
    assert "unhandled error" not in server.log(), server.log()[-3000:]  # HTTP 200 hides nothing here
    assert sum(seen.values()) >= 200 and any(status == 200 for status in seen), seen


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    st.one_of(
        st.builds(
            lambda v: to_json_text({"type": "task_info", "tasktoken": v}),
            st.text(max_size=8) | st.sampled_from(POISON_TEXT) | st.sampled_from(RAW_NUMBERS).map(Raw),
        ),
        st.integers(1, 1500).map(lambda depth: "[" * depth + "]" * depth),
        st.text(max_size=30).map(
            lambda text: text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        ),
        st.builds(
            lambda v: to_json_text({"type": "task_info", "tasktoken": "x", "v": v}),
            st.integers(0, 0).flatmap(lambda _: st.sampled_from(POISON_TEXT)),
        ),
    )
)
def test_fuzzed_socket_messages_always_get_an_error_frame(fuzz_target, text: str) -> None:
    server, _ = fuzz_target
    with connect(socket_url(server), open_timeout=10) as ws:
        ws.send(text)
        frame = json.loads(ws.recv(timeout=30))
    assert frame["result"] is False and frame["errors"][0]["message"]


def test_after_the_fuzz_pass_a_good_task_still_gets_its_callback(fuzz_target) -> None:
    """Runs last in this module: the callback thread survived whatever the fuzzed tasks left."""
    server, receiver = fuzz_target
    taskid = server.run(KREA, prompt="a good task", steps=4, width=64, height=64, callbackUrl=receiver.url)[
        "taskid"
    ]
    receiver.event.clear()
    server.post("/v1/Task/Cancel", json={"taskid": taskid})
    assert receiver.event.wait(30), server.log()[-3000:]
    assert any(r["json"]["tasklist"][0]["id"] == taskid for r in receiver.received if r["status"] == 200)
    assert "callback round failed" not in server.log()
