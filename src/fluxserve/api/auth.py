"""Request authentication: ``x-api-key``, ``x-nonce`` and ``x-signature``.

signature = hex HMAC-SHA256(key=api key, message=api secret + nonce). The seeds' bash recipe
(``echo -n … | openssl dgst -sha256 -hmac KEY``) puts OpenSSL's whole output line in the header —
``SHA2-256(stdin)= 4f1c…`` on OpenSSL 3, ``(stdin)= 4f1c…`` on 1.1 — so the hex digest is taken
from the end of the header value. Comparison is constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Protocol

from fluxserve.errors import AuthenticationError
from fluxserve.tasks.projects import ip_allowed
from fluxserve.tasks.records import Project

# Wiro's messages (error-reference.md); fluxserve adds a sentence saying what exactly is wrong.
NOT_FOUNDED = "Project authorization is not founded."
SIGNATURE_REQUIRED = (
    "Project requires signature authentication. x-signature and x-nonce headers are required."
)
NOT_VALID = "Project authorization is not valid."

_HEX_DIGEST = re.compile(r"([0-9a-fA-F]{64})\s*$")


def expected_signature(api_key: str, api_secret: str, nonce: str) -> str:
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


class ProjectLookup(Protocol):
    def project_by_key(self, api_key: str) -> Project | None: ...


def authenticate(
    headers, store: ProjectLookup, nonce_max_age: int, now: float | None = None, client_ip: str = ""
) -> Project:
    """The project the request belongs to; AuthenticationError saying what is wrong otherwise.

    ``client_ip`` is checked against the project's allow-list (Wiro's "Requested ip … is not allowed.").
    """
    api_key = _header(headers, "x-api-key")
    if not api_key:
        raise AuthenticationError(f"{NOT_FOUNDED} Send your API key in the x-api-key header.")
    project = store.project_by_key(api_key)
    if project is None:
        raise AuthenticationError(f"{NOT_FOUNDED} No project has this x-api-key.")
    if not ip_allowed(project, client_ip):
        raise AuthenticationError(f"Requested ip {client_ip} is not allowed.")
    if not project.require_signature:
        return project
    nonce = _header(headers, "x-nonce")
    signature = _header(headers, "x-signature")
    if not nonce or not signature:
        raise AuthenticationError(
            f"{SIGNATURE_REQUIRED} x-signature is the hex HMAC-SHA256 of api secret + nonce, "
            "keyed with the api key."
        )
    _check_nonce(nonce, nonce_max_age, time.time() if now is None else now)
    match = _HEX_DIGEST.search(signature)
    given = match.group(1).lower() if match else ""
    if not hmac.compare_digest(
        given.encode(), expected_signature(project.api_key, project.api_secret, nonce).encode()
    ):
        raise AuthenticationError(f"{NOT_VALID} Invalid x-signature for this x-api-key and x-nonce.")
    return project


def _header(headers, name: str) -> str:
    """A credential header's value; AuthenticationError if it holds anything but printable ASCII.

    HTTP header bytes arrive as latin-1 text, so a client's UTF-8 (or a stray control byte) would
    otherwise reach the key lookup and the HMAC as text no key can ever match.
    """
    value = (headers.get(name) or "").strip()
    if value and not (value.isascii() and value.isprintable()):
        raise AuthenticationError(f"The {name} header must be printable ASCII text.")
    return value


def _check_nonce(nonce: str, max_age: int, now: float) -> None:
    """Any integer is a valid nonce; one that looks like a unix time (s or ms) must be recent.

    Only ASCII digits count: ``str.isdigit`` also accepts '²' and '٣', which ``int`` rejects or reads.
    """
    if not (nonce.isascii() and nonce.isdigit()) or len(nonce) > 20:
        raise AuthenticationError(
            f"{NOT_VALID} x-nonce must be an integer (unix time in seconds or milliseconds)."
        )
    if not max_age:
        return
    value = int(nonce)
    if 10**9 <= value < 10**11:
        stamp = float(value)
    elif 10**12 <= value < 10**14:
        stamp = value / 1000
    else:
        return  # a random integer, as the seeds allow
    if abs(now - stamp) > max_age:
        raise AuthenticationError(
            f"{NOT_VALID} x-nonce {nonce} is a unix time more than {max_age} seconds away from "
            "the server's clock; use a fresh nonce (e.g. $(date +%s))."
        )
