"""Request signing: the ``x-api-key`` / ``x-nonce`` / ``x-signature`` headers of the Wiro API.

The signature is ``hex(HMAC-SHA256(key=api_key, message=api_secret + nonce))``, exactly what
``echo -n "$SECRET$NONCE" | openssl dgst -sha256 -hmac "$KEY"`` prints. Projects without a secret
("key-only" mode) send ``x-api-key`` alone.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time


def sign(api_key: str, api_secret: str, nonce: str) -> str:
    """Hex HMAC-SHA256 of ``api_secret + nonce`` keyed with ``api_key``."""
    message = f"{api_secret}{nonce}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


class Signer:
    """Builds fresh authentication headers for every request (a retried request gets a new nonce).

    Nonces are unix milliseconds, forced to increase strictly so that two requests sent within
    the same millisecond never share one (a server may reject a replayed nonce).
    """

    def __init__(self, api_key: str, api_secret: str | None = None) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.api_key = api_key
        self.api_secret = api_secret or None
        self._last_nonce = 0
        self._lock = threading.Lock()

    @property
    def signs(self) -> bool:
        """True in signature mode, False in key-only mode."""
        return self.api_secret is not None

    def next_nonce(self) -> str:
        with self._lock:
            nonce = max(int(time.time() * 1000), self._last_nonce + 1)
            self._last_nonce = nonce
        return str(nonce)

    def headers(self, nonce: str | None = None) -> dict[str, str]:
        if self.api_secret is None:
            return {"x-api-key": self.api_key}
        nonce = nonce if nonce is not None else self.next_nonce()
        return {
            "x-api-key": self.api_key,
            "x-nonce": nonce,
            "x-signature": sign(self.api_key, self.api_secret, nonce),
        }
