"""A small synchronous client for Black Forest Labs' asynchronous image API.

The protocol: ``POST {base}/v1/<model>`` with the ``x-key`` header answers ``{"id", "polling_url"}``;
``GET polling_url`` (exactly as given: BFL routes each request to a regional host) answers
``{"status": "Pending" | "Ready" | "Request Moderated" | "Content Moderated" | "Error" |
"Task not found", "result": {"sample": <signed URL>}}``; the sample URL expires after about ten
minutes, so it is downloaded as soon as the task is Ready.

Every failure becomes a :class:`BflError` (a TaskFailure) whose message tells the user, or the
operator, what to do. Rate limiting (429), server errors (5xx) and network errors are retried with
exponential backoff a bounded number of times. The API key is only ever sent in the ``x-key``
header, to the configured API host and its sibling hosts (``api.us1.bfl.ai`` for ``api.bfl.ai``),
never to the delivery host; and it is scrubbed from every message this module produces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from fluxserve.errors import TaskFailure

log = logging.getLogger(__name__)

PollCallback = Callable[[int, "float | None"], None]
"""``on_poll(poll_number, bfl_progress)``: called after each poll; may raise TaskKilled to stop."""

REDACTED = "[redacted]"
_FAILED_STATUSES = frozenset({"Request Moderated", "Content Moderated", "Error", "Task not found"})
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError)
"""Transport errors after which a POST is safe to repeat: the request did not reach BFL, or the
server closed the connection without answering (a stale keep-alive connection)."""


class BflError(TaskFailure):
    """The BFL API could not produce the image; the message is meant for the task's debugerror."""

    def __init__(self, message: str, *, status: str = "", http_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.http_status = http_status


@dataclass(frozen=True)
class BflOptions:
    """How to reach BFL and how patiently. Delays are configurable so that tests run in seconds."""

    api_key: str
    base_url: str = "https://api.bfl.ai"
    poll_interval: float = 0.5
    """First wait between two polls; grows by ``poll_backoff`` up to ``poll_interval_max``."""
    poll_backoff: float = 1.5
    poll_interval_max: float = 5.0
    max_wait: float = 900.0
    """Seconds after submission before giving up on a task that is still Pending."""
    max_retries: int = 4
    """Retries of one request after 429, 5xx or a network error (so up to 1 + max_retries tries)."""
    retry_delay: float = 1.0
    """First wait before a retry; doubled on each further retry, capped at ``retry_delay_max``."""
    retry_delay_max: float = 30.0
    request_timeout: float = 60.0
    max_image_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class BflSubmission:
    id: str
    polling_url: str


@dataclass(frozen=True)
class BflImage:
    data: bytes
    content_type: str  # "image/png" | "image/jpeg"
    extension: str  # "png" | "jpeg"
    request_id: str


class BflClient:
    """One BFL account. Thread-safe (httpx.Client is); share one per process and ``close()`` it."""

    def __init__(
        self,
        options: BflOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self._base = options.base_url.rstrip("/")
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            timeout=options.request_timeout, transport=transport, follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    # --- the three steps -------------------------------------------------------------------------

    def generate(self, endpoint: str, payload: dict[str, Any], on_poll: PollCallback) -> BflImage:
        """Submit, poll until Ready, download at once. Raises BflError; lets on_poll's errors through."""
        submission = self.submit(endpoint, payload)
        sample_url = self.wait_ready(submission, on_poll)
        return self.download(sample_url, submission.id)

    def submit(self, endpoint: str, payload: dict[str, Any]) -> BflSubmission:
        """``POST {base}{endpoint}``; returns BFL's request id and polling URL."""
        url = f"{self._base}/{endpoint.lstrip('/')}"
        response = self._request("POST", url, json=payload, with_key=True, idempotent=False)
        self._raise_for_http(response, "submitting the request")
        body = self._json(response, "the submit answer")
        request_id = str(body.get("id") or "")
        if not request_id:
            raise self._error("The BFL API accepted the request but sent no request id; try again.")
        polling_url = str(body.get("polling_url") or "")
        if not polling_url:  # older API versions: the documented global endpoint
            polling_url = f"{self._base}/v1/get_result?id={request_id}"
        log.info("BFL request %s submitted to %s", request_id, endpoint)
        return BflSubmission(id=request_id, polling_url=polling_url)

    def wait_ready(self, submission: BflSubmission, on_poll: PollCallback) -> str:
        """Poll ``submission.polling_url`` with backoff until Ready; return the signed sample URL."""
        deadline = self._clock() + self.options.max_wait
        interval = self.options.poll_interval
        status = ""
        polls = 0
        while True:
            response = self._request("GET", submission.polling_url, with_key=True, idempotent=True)
            if response.status_code == 404:
                status, body = "Task not found", {}
            else:
                self._raise_for_http(response, "checking on the request")
                body = self._json(response, "the polling answer")
                status = str(body.get("status") or "")
            polls += 1
            log.debug("BFL request %s: poll %d status %r", submission.id, polls, status)
            if status == "Ready":
                sample = (body.get("result") or {}).get("sample")
                if not sample:
                    raise self._error("BFL reported the image Ready but sent no download link; try again.")
                return str(sample)
            if status in _FAILED_STATUSES:
                raise self._status_error(status, submission.id, body)
            on_poll(polls, _progress(body))
            if self._clock() + interval > deadline:
                raise self._error(
                    f"BFL did not finish the image within {self.options.max_wait:g} s "
                    f"(request {submission.id}, last status {status or 'unknown'!r}); try again later.",
                    status=status,
                )
            self._sleep(interval)
            interval = min(interval * self.options.poll_backoff, self.options.poll_interval_max)

    def download(self, url: str, request_id: str = "") -> BflImage:
        """Fetch the signed sample URL (no API key: it goes to BFL's delivery host)."""
        response = self._request("GET", url, with_key=False, idempotent=True, follow_redirects=True)
        if response.status_code in (401, 403, 404, 410):
            raise self._error(
                f"BFL's download link for the image was refused (HTTP {response.status_code}); it may have "
                "expired before it could be fetched. Run the task again.",
                http_status=response.status_code,
            )
        self._raise_for_http(response, "downloading the image")
        data = response.content
        if len(data) > self.options.max_image_bytes:
            raise self._error(f"BFL's image is larger than {self.options.max_image_bytes} bytes; refused.")
        content_type, extension = _sniff_image(data)
        if not content_type:
            raise self._error("BFL's download link did not return a PNG or JPEG image; try again.")
        log.info("BFL request %s: downloaded %d bytes (%s)", request_id, len(data), content_type)
        return BflImage(data=data, content_type=content_type, extension=extension, request_id=request_id)

    # --- transport, retries and errors -----------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        with_key: bool,
        idempotent: bool,
        json: dict[str, Any] | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """One request, retried after 429/5xx answers and network errors with exponential backoff."""
        headers = {"accept": "application/json"}
        if with_key and self._may_receive_key(url):
            headers["x-key"] = self.options.api_key
        retries = self.options.max_retries
        for attempt in range(retries + 1):
            try:
                response = self._http.request(
                    method, url, json=json, headers=headers, follow_redirects=follow_redirects
                )
            except httpx.TransportError as exc:
                if attempt >= retries or not (idempotent or isinstance(exc, _NEVER_SENT)):
                    raise self._network_error(url, exc, attempt + 1) from None
                log.warning(
                    "BFL %s %s failed (%s); retry %d/%d",
                    method,
                    _host(url),
                    _describe(exc),
                    attempt + 1,
                    retries,
                )
                self._sleep(self._retry_delay(attempt, None))
                continue
            if response.status_code not in _RETRY_STATUS or attempt >= retries:
                return response
            log.warning(
                "BFL %s %s answered HTTP %d; retry %d/%d",
                method,
                _host(url),
                response.status_code,
                attempt + 1,
                retries,
            )
            self._sleep(self._retry_delay(attempt, response.headers.get("retry-after")))
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.options.retry_delay * (2**attempt)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, float(retry_after))
        return min(delay, self.options.retry_delay_max)

    def _may_receive_key(self, url: str) -> bool:
        """The key goes to the configured API host and its siblings (``api.us1.bfl.ai``), nowhere else."""
        host = (urlsplit(url).hostname or "").lower()
        base_host = (urlsplit(self._base).hostname or "").lower()
        if host == base_host:
            return True
        if _is_ip(base_host) or base_host.count(".") < 2:
            return False
        parent = base_host.split(".", 1)[1]  # api.bfl.ai -> bfl.ai
        return host.endswith("." + parent)

    def _raise_for_http(self, response: httpx.Response, doing: str) -> None:
        code = response.status_code
        if code < 400:
            return
        if code in (401, 403):
            raise self._error(
                f"The BFL API rejected this service's API key (HTTP {code}) while {doing}. "
                "The operator must set a valid BFL_API_KEY.",
                http_status=code,
            )
        if code == 402:
            raise self._error(
                "The BFL account behind this service has no credits left (HTTP 402). "
                "The operator must add credits to the BFL account.",
                http_status=code,
            )
        if code == 422:
            raise self._error(
                f"BFL rejected the inputs (HTTP 422): {_detail(response) or 'no detail given'}.",
                http_status=code,
            )
        if code == 429:
            raise self._error(
                f"BFL is rate-limiting this service (HTTP 429: too many requests or active tasks) "
                f"and still was after {self.options.max_retries} retries. Try again in a minute.",
                http_status=code,
            )
        detail = _detail(response)
        raise self._error(
            f"The BFL API answered HTTP {code} while {doing}{': ' + detail if detail else ''}"
            f"{'' if code < 500 else f', after {self.options.max_retries} retries'}. Try again later.",
            http_status=code,
        )

    def _status_error(self, status: str, request_id: str, body: dict[str, Any]) -> BflError:
        reasons = _moderation_reasons(body)
        because = f" (reasons: {reasons})" if reasons else ""
        messages = {
            "Request Moderated": (
                "BFL's moderation rejected the request itself (the prompt/inputs) before generating"
                f"{because}; no image was made. Rephrase the prompt, or use a higher safetyTolerance."
            ),
            "Content Moderated": (
                f"BFL generated the image but its output moderation withheld it (the result was flagged, "
                f"not the prompt){because}. Try another prompt or seed, or a higher safetyTolerance."
            ),
            "Error": (
                f"BFL reported an error while generating the image (request {request_id}){because}. "
                "Try again."
            ),
            "Task not found": (
                f"BFL no longer knows request {request_id} (Task not found): it expired or was never stored. "
                "Run the task again."
            ),
        }
        return self._error(messages[status], status=status)

    def _network_error(self, url: str, exc: httpx.TransportError, attempts: int) -> BflError:
        return self._error(
            f"Could not reach BFL at {_host(url)} ({_describe(exc)}) after {attempts} attempt(s). "
            "Try again later; if it persists the operator should check the network and FLUXSERVE_BFL_URL."
        )

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._error(
                f"BFL sent an unreadable answer in {what} (HTTP {response.status_code}); try again."
            )
        return body

    def _error(self, message: str, *, status: str = "", http_status: int | None = None) -> BflError:
        return BflError(self.redact(message), status=status, http_status=http_status)

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced, for anything that may be shown or logged."""
        key = self.options.api_key
        return text.replace(key, REDACTED) if key else text


def _progress(body: dict[str, Any]) -> float | None:
    value = body.get("progress")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _detail(response: httpx.Response) -> str:
    """BFL's (FastAPI's) ``detail``: a string, or a list of ``{loc, msg}`` -> "field: message; ..."."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text.strip()[:300]
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = [str(part) for part in item.get("loc", []) if part not in ("body", "query")]
                field = BFL_TO_TOOL_FIELD.get(loc[-1], loc[-1]) if loc else ""
                parts.append(f"{field}: {item.get('msg', '')}" if field else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        return "; ".join(parts)[:500]
    return "" if detail is None else str(detail)[:500]


BFL_TO_TOOL_FIELD = {
    "prompt_upsampling": "promptUpsampling",
    "safety_tolerance": "safetyTolerance",
    "aspect_ratio": "aspectRatio",
    "output_format": "outputFormat",
}
"""BFL's field names back to the tool inputs' names, so a 422 names the field the user sent."""


def _moderation_reasons(body: dict[str, Any]) -> str:
    details = body.get("details")
    if isinstance(details, dict):
        reasons = details.get("Moderation Reasons") or details.get("moderation_reasons")
        if isinstance(reasons, list):
            return ", ".join(str(reason) for reason in reasons)
    return ""


def _sniff_image(data: bytes) -> tuple[str, str]:
    """PNG or JPEG by magic bytes: what BFL sent, whatever its Content-Type header claims."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpeg"
    return "", ""


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection dropped"
    return type(exc).__name__
