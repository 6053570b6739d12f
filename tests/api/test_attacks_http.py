"""Attacks on a server with the strict default (FLUXSERVE_ALLOW_PRIVATE_URLS unset).

* Upload file names with ``../``, absolute paths, NUL bytes and encoded variants stay in the data folder.
* A file GET with a wrong name or access key is 404.
* ``callbackUrl``, image URLs and ``selectedLoraModelPrivateUrl`` aimed at loopback in every spelling
  (decimal, hex, octal, short, IPv4-mapped IPv6, ``localhost``, ``0.0.0.0``, odd case, userinfo) are refused
  before connecting: a TCP listener on that port accepts no connection, and the task says why.
(Private, link-local and metadata addresses and redirects to them are refused by the same guard; those
are tested in process with connections forbidden, tests/net/test_safe_fetch.py, so no test ever sends
a packet anywhere but loopback.)
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.files import image_bytes
from tests.support.service import LOOPBACK_TLS, Service

KONTEXT = "wiro/flux_kontext_dev_with_2_image"
LORA = "wiro/text-to-image-flux-lora-fast"


class Tripwire:
    """A TCP listener on 127.0.0.1 that counts every connection it is offered."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.close()


def loopback_spellings(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/x",
        f"http://localhost:{port}/x",
        f"http://2130706433:{port}/x",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{port}/x",  # … as hex
        f"http://0x7f.0.0.1:{port}/x",
        f"http://0177.0.0.1:{port}/x",  # … octal
        f"http://127.1:{port}/x",
        f"http://0.0.0.0:{port}/x",  # reaches local services on Linux
        f"http://[::ffff:127.0.0.1]:{port}/x",
        f"HTTP://127.0.0.1:{port}/x",
        f"http://user:pw@127.0.0.1:{port}/x",
    ]


def test_loopback_urls_in_every_spelling_are_refused_before_connecting(
    strict_service: Service, tripwire: Tripwire
) -> None:
    room = image_bytes((64, 64), (10, 120, 200))
    tasks = []
    for url in loopback_spellings(tripwire.port):
        kontext = strict_service.run(
            KONTEXT, prompt="p", steps="2", inputImageUrl=url, inputImage2Url=url, callbackUrl=url
        )
        tasks.append(("inputImageUrl", url, kontext["taskid"]))
        lora = strict_service.run(
            LORA,
            prompt="p",
            steps="2",
            width="64",
            height="64",
            selectedLoraModelPrivateUrl=url,
            callbackUrl=url,
        )
        tasks.append(("selectedLoraModelPrivateUrl", url, lora["taskid"]))
    # a task whose inputs are fine but whose callback is not: it runs, and only the callback is refused
    upload = strict_service.post("/v1/File/Upload", files={"file": ("room.jpg", room, "image/jpeg")}).json()
    assert upload["result"] is True, upload
    fine = strict_service.run(
        KONTEXT,
        prompt="p",
        steps="2",
        inputImageUrl="room.jpg",
        inputImage2Url="room.jpg",
        callbackUrl=f"http://2130706433:{tripwire.port}/hook",
    )
    for field, url, taskid in tasks:
        task = strict_service.wait(taskid, timeout=300)
        assert task["pexit"] != "0" and task["outputs"] == [], (url, task)
        assert task["debugerror"].startswith(f"{field}: refusing to fetch"), (url, task["debugerror"])
        assert "non-public address" in task["debugerror"]
    done = strict_service.wait(fine["taskid"], timeout=300)
    assert done["pexit"] == "0"
    for _field, url, taskid in [*tasks, ("callbackUrl", "", fine["taskid"])]:
        task = _wait_for_callback_note(strict_service, taskid)
        assert "callbackUrl: not called" in task["debugoutput"], (url, task["debugoutput"])
    assert tripwire.connections == 0


def _wait_for_callback_note(server: Service, taskid: str) -> dict:
    import time

    deadline = time.monotonic() + 60
    while True:
        task = server.detail(taskid)
        if "callbackUrl:" in task["debugoutput"] or time.monotonic() > deadline:
            return task
        time.sleep(0.1)


HOSTILE_NAMES = [
    "../../escape-1.png",
    "/etc/escape-2.png",
    "..\\..\\escape-3.png",
    "a\x00escape-4.png",
    "%2e%2e%2fescape-5.png",
    "..%2F..%2Fescape-6.png",
    "....//....//escape-7.png",
    "..／escape-8.png",  # fullwidth solidus
    "/",
    "..",
]  # (a part with an empty file name is a form field, not a file)


def test_hostile_upload_names_stay_inside_the_data_folder(strict_service: Service) -> None:
    before = {path for path in strict_service.data_dir.parent.rglob("*")}
    files = [
        ("file", (name, f"content {index}".encode(), "image/png")) for index, name in enumerate(HOSTILE_NAMES)
    ]
    answer = strict_service.post("/v1/File/Upload", files=files).json()
    assert answer["result"] is True, answer
    stored = answer["list"]
    assert len(stored) == len(HOSTILE_NAMES)
    files_dir = (strict_service.data_dir / "files").resolve()
    created = {path for path in strict_service.data_dir.parent.rglob("*") if path.is_file()} - before
    for path in created:
        resolved = path.resolve()
        assert files_dir in resolved.parents or strict_service.data_dir.resolve() in resolved.parents, path
    assert not [path for path in created if "escape" in path.name and files_dir not in path.resolve().parents]
    for item in stored:
        assert "/" not in item["name"] and "\\" not in item["name"] and "\x00" not in item["name"]
        assert not item["name"].startswith(".")
        download = httpx.get(item["url"], timeout=30, verify=LOOPBACK_TLS)
        assert download.status_code == 200 and download.content.startswith(b"content ")


def test_a_file_get_with_a_wrong_name_or_key_is_404(strict_service: Service) -> None:
    answer = strict_service.post("/v1/File/Upload", files={"file": ("real.png", b"real", "image/png")}).json()
    item = answer["list"][0]
    key = item["accesskey"]
    assert httpx.get(item["url"], timeout=30).status_code == 200
    base = strict_service.base_url
    wrong_key = key[:-1] + ("y" if key.endswith("x") else "x")  # one character off, never the key itself
    for path in [
        f"/v1/File/{key}/other.png",
        f"/v1/File/{key}/REAL.png",
        f"/v1/File/{wrong_key}/real.png",
        f"/v1/File/{key}/..%2F..%2Ffluxserve.db",
        f"/v1/File/{key}/%2e%2e/%2e%2e/fluxserve.db",
        "/v1/File/../../fluxserve.db",
        f"/v1/File/{'A' * 30}/real.png",
    ]:
        response = httpx.get(base + path, timeout=30, verify=LOOPBACK_TLS)
        assert response.status_code == 404, (path, response.status_code)
        assert b"SQLite" not in response.content
    # A NUL in the path is refused at the door, before any route, as a malformed request (Wiro's shape)
    refused = httpx.get(f"{base}/v1/File/{key}/real.png%00.txt", timeout=30)
    assert refused.json()["result"] is False and "URL path" in refused.json()["errors"][0]["message"]
    assert refused.content != b"real"
