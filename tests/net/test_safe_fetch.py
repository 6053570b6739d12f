"""safe_fetch against a real loopback HTTP server; non-loopback targets are only ever refused."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from loopback_http import LoopbackServer, body, redirect

from fluxserve.errors import InputFetchError, TaskKilled
from fluxserve.net import safe_fetch
from fluxserve.net.safe_fetch import (
    FetchPolicy,
    check_url_allowed,
    direct_download_url,
    fetch_to_file,
    is_forbidden_address,
)

OPEN = FetchPolicy(allow_private=True, timeout_s=5.0)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_success_writes_file_with_hash_and_type(server: LoopbackServer, tmp_path: Path) -> None:
    data = b"\x89PNG fake" * 1000
    server.routes["/img.png"] = body(data, "image/png; charset=binary")
    got = fetch_to_file(server.url("/img.png?x=1"), tmp_path / "in" / "a.png", OPEN, what="inputImageUrl")
    assert got.path.read_bytes() == data
    assert got.size == len(data)
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.content_type == "image/png"
    assert got.final_url == server.url("/img.png?x=1")
    assert server.requests == ["/img.png?x=1"]
    assert leftovers(tmp_path / "in") == []


def test_host_name_is_sent_in_host_header(server: LoopbackServer, tmp_path: Path) -> None:
    server.routes["/a"] = body(b"hello")
    fetch_to_file(f"http://localhost:{server.port}/a", tmp_path / "a", OPEN)
    assert server.hosts == [f"localhost:{server.port}"]


def test_404_names_input_status_and_url(server: LoopbackServer, tmp_path: Path) -> None:
    url = server.url("/missing.png")
    with pytest.raises(InputFetchError) as err:
        fetch_to_file(url, tmp_path / "a.png", OPEN, what="inputImageUrl")
    assert str(err.value) == f"inputImageUrl: the server answered HTTP 404 for '{url}'"
    assert not (tmp_path / "a.png").exists()


def test_redirect_chain_is_followed(server: LoopbackServer, tmp_path: Path) -> None:
    server.routes["/a"] = redirect(server.url("/b"), 301)
    server.routes["/b"] = redirect("/c", 307)  # relative Location
    server.routes["/c"] = body(b"final")
    got = fetch_to_file(server.url("/a"), tmp_path / "f", OPEN)
    assert got.path.read_bytes() == b"final"
    assert got.final_url == server.url("/c")
    assert server.requests == ["/a", "/b", "/c"]


def test_too_many_redirects(server: LoopbackServer, tmp_path: Path) -> None:
    server.routes["/loop"] = redirect("/loop")
    policy = FetchPolicy(allow_private=True, max_redirects=3, timeout_s=5)
    with pytest.raises(InputFetchError, match="more than 3 redirects"):
        fetch_to_file(server.url("/loop"), tmp_path / "f", policy, what="x")
    assert len(server.requests) == 4


def test_redirect_to_loopback_is_rechecked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """First hop on 127.0.0.2 (treated as public for this test) redirects to 127.0.0.1: refused."""
    real = is_forbidden_address
    monkeypatch.setattr(
        safe_fetch,
        "is_forbidden_address",
        lambda ip: False if ip == ipaddress.ip_address("127.0.0.2") else real(ip),
    )
    public = LoopbackServer("127.0.0.2").start()
    private = LoopbackServer("127.0.0.1").start()
    try:
        private.routes["/secret"] = body(b"metadata")
        public.routes["/go"] = redirect(private.url("/secret"))
        with pytest.raises(InputFetchError) as err:
            fetch_to_file(public.url("/go"), tmp_path / "f", FetchPolicy(timeout_s=5), what="inputImage2Url")
        assert str(err.value).startswith("inputImage2Url: refusing to fetch")
        assert "127.0.0.1" in str(err.value)
        assert public.requests == ["/go"]
        assert private.requests == []
    finally:
        public.stop()
        private.stop()


def test_too_large_by_content_length_refused_before_reading(server: LoopbackServer, tmp_path: Path) -> None:
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10 * 2**20))
        handler.end_headers()
        handler.wfile.write(b"x" * 1000)

    server.routes["/big"] = huge
    policy = FetchPolicy(allow_private=True, max_bytes=2**20, timeout_s=5)
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: .* larger than the 1 MiB limit"):
        fetch_to_file(server.url("/big"), tmp_path / "f", policy, what="inputImageUrl")
    assert list(tmp_path.iterdir()) == []


def test_too_large_while_streaming_without_length(server: LoopbackServer, tmp_path: Path) -> None:
    server.routes["/big"] = body(b"y" * 300_000, length=False)
    policy = FetchPolicy(allow_private=True, max_bytes=100_000, timeout_s=5)
    with pytest.raises(InputFetchError, match="larger than"):
        fetch_to_file(server.url("/big"), tmp_path / "f", policy)
    assert list(tmp_path.iterdir()) == []
    # The same body under a higher cap is fetched whole, so the cap is what stopped it.
    got = fetch_to_file(server.url("/big"), tmp_path / "g", FetchPolicy(allow_private=True, timeout_s=5))
    assert got.size == 300_000


def test_server_that_never_answers_times_out(server: LoopbackServer, tmp_path: Path) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(3)
        body(b"late")(handler)

    server.routes["/slow"] = slow
    policy = FetchPolicy(allow_private=True, timeout_s=0.5)
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: .* took longer than 0.5 s"):
        fetch_to_file(server.url("/slow"), tmp_path / "f", policy, what="inputImageUrl")


def test_slow_drip_hits_the_overall_deadline(server: LoopbackServer, tmp_path: Path) -> None:
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        for _ in range(20):
            handler.wfile.write(b"z" * 10)
            handler.wfile.flush()
            time.sleep(0.2)

    server.routes["/drip"] = drip
    policy = FetchPolicy(allow_private=True, timeout_s=1.0)
    with pytest.raises(InputFetchError, match="took longer than 1 s"):
        fetch_to_file(server.url("/drip"), tmp_path / "f", policy)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "flux_kontext_room.jpg", "data:,hi"],
)
def test_non_http_schemes_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: only http and https URLs"):
        fetch_to_file(url, tmp_path / "f", OPEN, what="inputImageUrl")


def test_empty_url_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFetchError, match=r"^inputImage2Url: no URL was given"):
        fetch_to_file("  ", tmp_path / "f", OPEN, what="inputImage2Url")


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail loudly if anything tries to open a TCP connection."""
    attempts: list[object] = []

    def refuse(address: object, *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address)
        raise AssertionError(f"tried to connect to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8000/x",
        "http://localhost/",
        "http://2130706433/",  # 127.0.0.1 as one integer
        "http://127.1/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # shared address space (CGNAT)
        "http://169.254.169.254/latest/meta-data/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "https://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 wrapping 169.254.169.254
    ],
)
def test_private_addresses_refused_before_connecting(
    url: str, tmp_path: Path, no_connections: list[object]
) -> None:
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: refusing to fetch .* non-public address"):
        fetch_to_file(url, tmp_path / "f", FetchPolicy(), what="inputImageUrl")
    with pytest.raises(InputFetchError, match="refusing"):
        check_url_allowed(url, allow_private=False)
    assert no_connections == []
    assert list(tmp_path.iterdir()) == []


def test_check_url_allowed_lets_public_and_private_when_allowed(no_connections: list[object]) -> None:
    check_url_allowed("https://93.184.215.14/hook", allow_private=False)
    check_url_allowed("http://[2606:4700::1111]/", allow_private=False)
    check_url_allowed("http://127.0.0.1:9/", allow_private=True)
    with pytest.raises(InputFetchError, match="callbackUrl: only http and https"):
        check_url_allowed("javascript:alert(1)", allow_private=True, what="callbackUrl")
    assert no_connections == []


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
        ("127.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("::ffff:192.168.0.1", True),
        ("2001::1", True),  # Teredo range itself is not global
    ],
)
def test_address_classification(address: str, forbidden: bool) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://drive.google.com/file/d/1AbC_d-9/view?usp=sharing",
            "https://drive.usercontent.google.com/download?id=1AbC_d-9&export=download&confirm=t",
        ),
        (
            "https://drive.google.com/open?id=1AbC_d-9",
            "https://drive.usercontent.google.com/download?id=1AbC_d-9&export=download&confirm=t",
        ),
        (
            "https://huggingface.co/owner/repo/blob/main/lora/w.safetensors?download=true",
            "https://huggingface.co/owner/repo/resolve/main/lora/w.safetensors?download=true",
        ),
        (
            "https://huggingface.co/owner/repo/resolve/main/w.safetensors",
            "https://huggingface.co/owner/repo/resolve/main/w.safetensors",
        ),
        ("https://example.com/blob/x.png", "https://example.com/blob/x.png"),
        ("https://drive.google.com/drive/folders/abc", "https://drive.google.com/drive/folders/abc"),
    ],
)
def test_direct_download_url(url: str, expected: str) -> None:
    assert direct_download_url(url) == expected


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """An https server on 127.0.0.1 whose self-signed certificate names only ``localhost``."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    srv = LoopbackServer()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    srv._httpd.socket = server_context.wrap_socket(srv._httpd.socket, server_side=True)
    client_context = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(safe_fetch, "_tls_verify", lambda: client_context)
    yield srv.start()
    srv.stop()


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(
    tls_server: LoopbackServer, tmp_path: Path
) -> None:
    """The connection goes to the resolved IP, yet SNI and the certificate check use the host name."""
    tls_server.routes["/x"] = body(b"secret sauce")
    got = fetch_to_file(f"https://localhost:{tls_server.port}/x", tmp_path / "x", OPEN)
    assert got.path.read_bytes() == b"secret sauce"
    assert tls_server.hosts == [f"localhost:{tls_server.port}"]
    # The certificate does not name 127.0.0.1: verification is on, so this must fail.
    with pytest.raises(
        InputFetchError, match=r"^inputImageUrl: could not connect .*CERTIFICATE_VERIFY_FAILED"
    ):
        fetch_to_file(f"https://127.0.0.1:{tls_server.port}/x", tmp_path / "y", OPEN, what="inputImageUrl")
    assert tls_server.requests == ["/x"]


def test_every_fetch_shares_one_verifying_tls_context() -> None:
    """Built once (loading the CA bundle costs ~30 ms of CPU), and it verifies certificates and names."""
    context = safe_fetch._tls_verify()
    assert isinstance(context, ssl.SSLContext) and safe_fetch._tls_verify() is context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # a real bundle, not an empty trust store


def test_credentials_in_the_url_are_sent_as_basic_auth(server: LoopbackServer, tmp_path: Path) -> None:
    seen: list[str] = []

    def guarded(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.headers.get("Authorization", ""))
        body(b"ok")(handler)

    server.routes["/private.png"] = guarded
    fetch_to_file(f"http://user:pa55@127.0.0.1:{server.port}/private.png", tmp_path / "f", OPEN)
    assert seen == ["Basic dXNlcjpwYTU1"]
    with pytest.raises(InputFetchError) as err:  # ... and never shown in a debugerror
        fetch_to_file(f"http://user:pa55@127.0.0.1:{server.port}/nope.png", tmp_path / "g", OPEN)
    assert "pa55" not in str(err.value)
    assert f"http://***@127.0.0.1:{server.port}/nope.png" in str(err.value)


def test_a_slow_resolver_counts_against_the_deadline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def hanging_lookup(*args: object, **kwargs: object) -> list[object]:
        time.sleep(2)
        raise socket.gaierror("too late")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    with pytest.raises(
        InputFetchError, match=r"^inputImageUrl: looking up the host name 'slow\.example' timed out"
    ):
        fetch_to_file(
            "http://slow.example/a.png", tmp_path / "f", FetchPolicy(timeout_s=0.3), what="inputImageUrl"
        )


@pytest.mark.parametrize("trickle", [True, False], ids=["slow", "stalled"])
def test_a_kill_stops_a_download_even_when_the_server_sends_nothing(tmp_path: Path, trickle: bool) -> None:
    """The kill flag is watched beside the read: a trickling or a silent server is cut off at once."""
    release = threading.Event()

    class Stalling(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(2**30))
            self.end_headers()
            self.wfile.write(b"\0" * 100)
            self.wfile.flush()
            try:
                while not release.wait(0.05):
                    if trickle:
                        self.wfile.write(b"\0" * 10)
                        self.wfile.flush()
            except OSError:
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    killed = threading.Event()
    threading.Timer(0.5, killed.set).start()
    try:
        with pytest.raises(TaskKilled, match="killed while downloading lora"):
            fetch_to_file(
                f"http://127.0.0.1:{server.server_address[1]}/x",
                tmp_path / "f",
                FetchPolicy(allow_private=True, timeout_s=120, max_bytes=2**31),
                what="lora",
                should_stop=killed.is_set,
            )
        assert not (tmp_path / "f").exists() and not list(tmp_path.glob(".f.*"))  # no partial file left
    finally:
        release.set()
        server.shutdown()
        server.server_close()
