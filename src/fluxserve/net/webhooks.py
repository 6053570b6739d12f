"""Standard Webhooks signing (https://www.standardwebhooks.com): pure functions, no I/O.

Each callback carries three headers:

* ``webhook-id``: the event's id — the same on every retry, so a receiver can drop duplicates;
* ``webhook-timestamp``: unix seconds of this attempt (receivers refuse old ones: replay defence);
* ``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 over ``{id}.{timestamp}.{body}``, keyed with the
  base64-decoded part of the project's ``whsec_…`` secret.

Receivers verify with any Standard Webhooks library (``standardwebhooks`` in Python, ``svix`` …).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (ValueError when it is not one)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    key = base64.b64decode(secret[len(SECRET_PREFIX) :] + "==")
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    message = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event_id_for_task(task_uuid: str) -> str:
    """One id per task end: a task ends once, so its callback is one event however often it is sent."""
    return "msg_" + task_uuid.replace("-", "")


def signed_headers(secret: str, event_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, event_id, timestamp, body),
    }
