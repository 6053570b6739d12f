"""``Authorization: Bearer <token>`` for OpenAI clients, which cannot sign requests.

The token is the project's API key for a key-only project, and ``<api key>:<api secret>`` for a
project that requires signatures: the secret takes the place of the signature, so a key alone
never opens a signature project. Comparison is constant time.
"""

from __future__ import annotations

import hmac

from fluxserve.errors import AuthenticationError
from fluxserve.tasks.projects import ip_allowed
from fluxserve.tasks.records import Project
from fluxserve.tasks.store import TaskStore


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "Missing bearer token: send 'Authorization: Bearer <api key>' (key-only projects) or "
            "'Authorization: Bearer <api key>:<api secret>' (projects that require signatures)."
        )
    return token.strip()


def authenticate_bearer(authorization: str, store: TaskStore, client_ip: str = "") -> Project:
    """The project of ``Authorization: Bearer …``; AuthenticationError saying what is wrong otherwise.
    The project's IP allow-list applies as on the Wiro routes."""
    token = bearer_token(authorization)
    api_key, has_secret, api_secret = token.partition(":")
    project = store.project_by_key(api_key)
    if project is None:
        raise AuthenticationError("Incorrect API key provided.")
    if not ip_allowed(project, client_ip):
        raise AuthenticationError(f"Requested ip {client_ip} is not allowed.")
    if has_secret:
        if not hmac.compare_digest(api_secret.encode(), project.api_secret.encode()):
            raise AuthenticationError("Incorrect API secret for this API key.")
        return project
    if project.require_signature:
        raise AuthenticationError(
            "This project requires signed requests; OpenAI clients must send "
            "'Authorization: Bearer <api key>:<api secret>' (the key alone is not enough)."
        )
    return project
