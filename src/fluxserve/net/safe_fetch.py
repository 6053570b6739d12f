"""Fetch a user-supplied URL to a local file without letting the user reach our own network.

Every URL a user gives us (input images, LoRA files, callback targets) goes through here:

* only ``http``/``https``;
* the host is resolved once and *every* address it resolves to must be public (not private,
  loopback, link-local, multicast, reserved, unspecified, shared/CGNAT, nor such an IPv4 address
  wrapped in IPv6: IPv4-mapped, 6to4, Teredo, NAT64) unless ``allow_private``;
* the connection goes to the address we checked (the URL is rewritten to the IP literal, the
  original name is kept in the ``Host`` header and as TLS SNI/certificate name), so a DNS answer
  that changes between check and connect (DNS rebinding) cannot redirect us;
* redirects are followed by hand, each hop checked again, at most ``max_redirects``;
* the body is streamed to a temporary file next to ``dest`` under a byte cap and an overall
  deadline, hashed on the way, then renamed into place atomically.

Every failure raises :class:`~fluxserve.errors.InputFetchError` whose message starts with the
input's name (``what``), because it becomes the task's ``debugerror``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import logging
import os
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit, urlunsplit

import httpx

from fluxserve.errors import InputFetchError, TaskKilled, UrlRefusedError

log = logging.getLogger(__name__)

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "fluxserve-fetch/0.1"
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")

DNS_TIMEOUT_S = 10.0
"""How long :func:`check_url_allowed` waits for the resolver (fetches use their own deadline)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch. ``allow_private`` mirrors ``FLUXSERVE_ALLOW_PRIVATE_URLS``."""

    allow_private: bool = False
    max_bytes: int = 50 * 2**20
    timeout_s: float = 30.0
    max_redirects: int = 5


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    size: int
    content_type: str
    final_url: str
    sha256: str


@dataclass(frozen=True)
class _Target:
    """A checked URL: where to connect (``ips``, in order) and what to tell the server (``host``)."""

    url: str
    scheme: str
    host: str
    port: int
    ips: tuple[IPAddress, ...]


def _short(url: str, limit: int = 200) -> str:
    """``url`` as shown in messages and logs: without ``user:password@``, at most ``limit`` long."""
    try:
        parts = urlsplit(url)
        if "@" in parts.netloc:
            url = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
    except ValueError:
        pass
    return url if len(url) <= limit else url[: limit - 1] + "…"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_forbidden_address(ip: IPAddress) -> bool:
    """True when ``ip`` is not a plain public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d *is* a.b.c.d on the wire
            return is_forbidden_address(ip.ipv4_mapped)
        inner = _embedded_ipv4(ip)
        if inner is not None and is_forbidden_address(inner):
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """All addresses ``host`` resolves to (an IP literal resolves to itself), within ``timeout``.

    ``getaddrinfo`` cannot be interrupted, so it runs in a daemon thread that is abandoned (and
    finishes on its own) when the resolver is slower than the deadline.
    """
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name=f"resolve-{host}", daemon=True)
    worker.start()
    worker.join(max(timeout, 0.001))
    if worker.is_alive():
        raise TimeoutError(f"resolving {host} took longer than {timeout:.3g} s")
    if "error" in outcome:
        raise LookupError(str(outcome["error"]))
    infos = outcome["infos"]
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _check(url: str, allow_private: bool, what: str, timeout: float = DNS_TIMEOUT_S) -> _Target:
    """Validate ``url`` and resolve its host; raise InputFetchError if it must not be fetched."""
    control = _CONTROL.search(url.strip())
    if control:
        raise UrlRefusedError(
            f"{what}: '{_short(_CONTROL.sub('?', url))}' is not a valid URL "
            f"(it has a space or control character at position {control.start()})"
        )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlRefusedError(f"{what}: '{_short(url)}' is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = scheme or "no scheme"
        raise UrlRefusedError(
            f"{what}: only http and https URLs can be fetched, got {shown} in '{_short(url)}'"
        )
    host = parts.hostname
    if not host:
        raise UrlRefusedError(f"{what}: the URL '{_short(url)}' has no host name")
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = _resolve(host, port, timeout)
    except TimeoutError:
        raise InputFetchError(f"{what}: looking up the host name '{host}' timed out") from None
    except LookupError:
        raise InputFetchError(f"{what}: the host name '{host}' could not be resolved") from None
    if not addresses:
        raise InputFetchError(f"{what}: the host name '{host}' has no address")
    if not allow_private:
        for ip in addresses:
            if is_forbidden_address(ip):
                raise UrlRefusedError(
                    f"{what}: refusing to fetch '{_short(url)}' because {host} resolves to {ip}, "
                    "a private, loopback or otherwise non-public address"
                )
    return _Target(url=url.strip(), scheme=scheme, host=host, port=port, ips=tuple(addresses))


def send_checked(
    url: str,
    policy: FetchPolicy,
    *,
    method: str = "POST",
    content: bytes = b"",
    headers: dict[str, str] | None = None,
    what: str = "url",
) -> int:
    """Send one request to ``url`` under the same guard as fetches; the answer's HTTP status.

    The host is checked and the connection pinned to the checked address exactly as for
    :func:`fetch_to_file`; redirects are not followed; no proxy is taken from the environment.
    Raises UrlRefusedError when the URL may never be requested, InputFetchError when this
    attempt failed (DNS, connection, timeout).
    """
    deadline = _Deadline(policy.timeout_s)
    target = _check(url, policy.allow_private, what, policy.timeout_s)
    with httpx.Client(follow_redirects=False, trust_env=False, verify=_tls_verify()) as client:
        response = _connect(
            client, target, deadline, policy, what, method=method, content=content, headers=headers
        )
        response.close()
        return response.status_code


def check_url_allowed(url: str, allow_private: bool, *, what: str = "url") -> None:
    """Raise InputFetchError unless ``url`` is http(s) and its host resolves to allowed addresses."""
    _check(url, allow_private, what)


def direct_download_url(url: str) -> str:
    """Turn share links into direct-download links (Google Drive, Hugging Face ``/blob/``).

    Other URLs are returned unchanged.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if host == "drive.google.com":
        file_id = None
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 3 and segments[0] == "file" and segments[1] == "d":
            file_id = segments[2]
        elif segments and segments[0] in ("open", "uc"):
            file_id = (parse_qs(parts.query).get("id") or [None])[0]
        if file_id:
            # drive.usercontent.google.com with confirm=t skips the "can't scan for viruses" page.
            return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"
        return url
    if host in ("huggingface.co", "hf.co", "www.huggingface.co") and "/blob/" in parts.path:
        path = parts.path.replace("/blob/", "/resolve/", 1)
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
    return url


def _pinned_request(
    client: httpx.Client,
    target: _Target,
    ip: IPAddress,
    timeout: float,
    method: str = "GET",
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Request:
    """A request to the checked ``ip``, with the original host in ``Host`` and as the TLS name."""
    parts = urlsplit(target.url)
    ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{ip_host}:{target.port}"
    if "@" in parts.netloc:  # keep user:password@ (httpx turns it into basic auth)
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    pinned = urlunsplit((target.scheme, netloc, parts.path or "/", parts.query, ""))
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header = f"{host_header}:{target.port}"
    extensions: dict[str, object] = {
        "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    }
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    return client.build_request(
        method,
        pinned,
        content=content,
        headers={
            "Host": host_header,
            "User-Agent": _USER_AGENT,
            "Accept": "*/*",
            "Accept-Encoding": "identity",  # so the byte cap counts what lands on disk
            **(headers or {}),
        },
        extensions=extensions,
    )


STOP_CHECK_INTERVAL_S = 0.2
"""How often a streaming download asks ``should_stop`` (it may read the database)."""


class _KillWatch:
    """Asks ``should_stop`` every :data:`STOP_CHECK_INTERVAL_S` in a side thread while a body
    streams; when it answers True, shuts the connection's socket down, so even a read blocked on a
    server that sends nothing returns at once (and the download ends with TaskKilled)."""

    def __init__(self, should_stop: Callable[[], bool] | None, response: httpx.Response, what: str) -> None:
        self._should_stop = should_stop
        self._response = response
        self._what = what
        self._done = threading.Event()
        self.killed = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _KillWatch:
        if self._should_stop is not None:
            self._thread = threading.Thread(target=self._watch, name=f"kill-watch-{self._what}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()

    def check(self) -> None:
        if self.killed:
            raise TaskKilled(f"killed while downloading {self._what}")

    def _watch(self) -> None:
        assert self._should_stop is not None
        while not self._done.wait(STOP_CHECK_INTERVAL_S):
            try:
                stop = self._should_stop()
            except Exception:  # a failed kill-flag read must not end the download
                log.warning("%s: could not read the kill flag", self._what, exc_info=True)
                continue
            if stop:
                self.killed = True
                self._interrupt()
                return

    def _interrupt(self) -> None:
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


def fetch_to_file(
    url: str,
    dest: Path,
    policy: FetchPolicy,
    *,
    what: str = "url",
    should_stop: Callable[[], bool] | None = None,
) -> FetchedFile:
    """Download ``url`` to ``dest`` under ``policy``; see the module docstring for the guarantees.

    ``should_stop`` (the task's kill flag) is asked every :data:`STOP_CHECK_INTERVAL_S` while the
    body streams; when it answers True the connection is cut and the download stops with
    TaskKilled, even if the server has stopped sending.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputFetchError(f"{what}: no URL was given")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    deadline = _Deadline(policy.timeout_s)
    current = direct_download_url(url.strip())
    with httpx.Client(follow_redirects=False, trust_env=False, verify=_tls_verify()) as client:
        for _hop in range(policy.max_redirects + 1):
            target = _check(current, policy.allow_private, what, max(deadline.remaining(), 0.001))
            response = _connect(client, target, deadline, policy, what)
            try:
                if response.status_code in _REDIRECT_CODES:
                    location = response.headers.get("location")
                    if not location:
                        raise InputFetchError(
                            f"{what}: the server answered HTTP {response.status_code} without a "
                            f"Location for '{_short(current)}'"
                        )
                    try:
                        current = urljoin(current, location)
                    except ValueError:
                        raise UrlRefusedError(
                            f"{what}: the server redirected to an invalid URL '{_short(location)}'"
                        ) from None
                    log.debug("%s: redirected to %s", what, _short(current))
                    continue
                if response.status_code != 200:
                    raise InputFetchError(
                        f"{what}: the server answered HTTP {response.status_code} for '{_short(current)}'"
                    )
                return _stream_to_file(response, dest, policy, deadline, what, current, should_stop)
            finally:
                response.close()
    raise InputFetchError(f"{what}: more than {policy.max_redirects} redirects starting at '{_short(url)}'")


def _connect(
    client: httpx.Client,
    target: _Target,
    deadline: _Deadline,
    policy: FetchPolicy,
    what: str,
    **request: Any,
) -> httpx.Response:
    """Send the request (a GET unless ``request`` says otherwise) to the first checked address that
    accepts a connection."""
    failure: Exception | None = None
    for ip in target.ips:
        if deadline.expired():
            break
        pinned = _pinned_request(client, target, ip, deadline.remaining(), **request)
        try:
            return client.send(pinned, stream=True)
        except httpx.ConnectError as exc:  # try the host's next address (e.g. IPv6 then IPv4)
            failure = exc
        except httpx.TimeoutException:
            raise _timeout(what, target.url, policy) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise InputFetchError(
                f"{what}: could not reach '{_short(target.url)}': {_describe(exc)}"
            ) from None
    if failure is None:
        raise _timeout(what, target.url, policy)
    raise InputFetchError(f"{what}: could not connect to '{_short(target.url)}': {_describe(failure)}")


@functools.cache
def _tls_verify() -> ssl.SSLContext | bool:
    """Certificate verification for https (always on; tests substitute a context trusting their CA).

    One context for every fetch, built as httpx builds it for ``verify=True`` (certifi's bundle):
    httpx would build a new one per client, loading the whole CA bundle each time, ~30 ms of CPU
    for every callback delivered and every input image or LoRA downloaded. A context is safe to
    share between threads.
    """
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _timeout(what: str, url: str, policy: FetchPolicy) -> InputFetchError:
    return InputFetchError(f"{what}: downloading '{_short(url)}' took longer than {policy.timeout_s:g} s")


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _too_large(what: str, url: str, policy: FetchPolicy) -> InputFetchError:
    return InputFetchError(
        f"{what}: '{_short(url)}' is larger than the {_human_size(policy.max_bytes)} limit"
    )


def _human_size(size: int) -> str:
    """1000 -> '1000 bytes', 52428800 -> '50 MiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


def _stream_to_file(
    response: httpx.Response,
    dest: Path,
    policy: FetchPolicy,
    deadline: _Deadline,
    what: str,
    url: str,
    should_stop: Callable[[], bool] | None = None,
) -> FetchedFile:
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > policy.max_bytes:
        raise _too_large(what, url, policy)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _KillWatch(should_stop, response, what) as watch:
            try:
                for chunk in response.iter_bytes():  # as the bytes arrive
                    watch.check()
                    size += len(chunk)
                    if size > policy.max_bytes:
                        raise _too_large(what, url, policy)
                    if deadline.expired():
                        raise _timeout(what, url, policy)
                    digest.update(chunk)
                    out.write(chunk)
            except httpx.TimeoutException:
                watch.check()
                raise _timeout(what, url, policy) from None
            except httpx.HTTPError as exc:
                watch.check()  # the watch cut the connection: a kill, not a broken download
                raise InputFetchError(
                    f"{what}: the download of '{_short(url)}' broke off: {_describe(exc)}"
                ) from None
            watch.check()
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    log.info("%s: fetched %s (%d bytes)", what, _short(url), size)
    return FetchedFile(
        path=dest, size=size, content_type=content_type, final_url=url, sha256=digest.hexdigest()
    )
