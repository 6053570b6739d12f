"""When to retry a request, and how long to wait first (honouring ``Retry-After``)."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

ALWAYS_RETRIED = frozenset({429, 503})
"""The server says "not now" and did not act on the request: safe to resend even a Run."""

RETRIED_IF_IDEMPOTENT = frozenset({500, 502, 504})
"""The request may have been acted on: only resent when doing it twice is harmless."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, outcome: httpx.Response | Exception, idempotent: bool) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up and report ``outcome``."""
        if attempt >= self.retries:
            return None
        if isinstance(outcome, httpx.Response):
            status = outcome.status_code
            if status not in ALWAYS_RETRIED and not (idempotent and status in RETRIED_IF_IDEMPOTENT):
                return None
            after = parse_retry_after(outcome.headers.get("retry-after"))
            if after is not None:
                return min(after, self.max_delay)
        elif not (isinstance(outcome, (httpx.ConnectError, httpx.ConnectTimeout)) or idempotent):
            return None  # the request may have reached the server; resending could run it twice
        return min(self.backoff * (2**attempt) * random.uniform(0.75, 1.25), self.max_delay)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date. None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
