"""Read a response envelope (``{"result": ..., "errors": [...], ...}``) or raise the fitting error."""

from __future__ import annotations

import re
from typing import Any

import httpx

from fluxserve.client.errors import (
    AuthError,
    Conflict,
    FluxserveAPIError,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)
from fluxserve.client.models import ApiError
from fluxserve.errors import FieldError

# Wiro answers every error with HTTP 200 (error-reference.md) except authentication (401) and an
# unknown endpoint (404), so the kind of error is read from the code and the message. The patterns
# match Wiro's documented messages and the older wording of fluxserve and hosted Wiro alike.
_NOT_FOUND_RE = re.compile(
    r"there is no task|not-exist|not (be )?found|does not exist|doesn't exist|unknown|no such|"
    r"error parsing url",
    re.IGNORECASE,
)
_VALIDATION_RE = re.compile(
    r"^\s*(request (parameter|parameters|files)\b|taskid or socketaccesstoken is required)", re.IGNORECASE
)
_AUTH_RE = re.compile(r"^\s*(project authorization|project requires signature|authorization bearer)", re.I)
_SERVER_RE = re.compile(r"^\s*internal server error", re.IGNORECASE)
_WIRO_FIELD_RE = re.compile(r"^\s*Request (?:parameter|files) \[([^\]]+)\]\s*(.+)$", re.IGNORECASE)
_FIELD_RE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*:\s*(.+)$")


def read_envelope(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful call; raise a FluxserveAPIError subclass for anything else."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _for_status(
            response.status_code, [], f"HTTP {response.status_code} with a body that is not JSON"
        )
    errors = [ApiError.from_wire(item) for item in body.get("errors") or []]
    if response.status_code >= 400 or body.get("result") is False or errors:
        raise _for_status(response.status_code, errors, None)
    return body


def transport_error(exc: Exception, url: str) -> TransportError:
    return TransportError(f"cannot reach {url}: {exc or type(exc).__name__}")


def _for_status(status: int, errors: list[ApiError], fallback: str | None) -> FluxserveAPIError:
    message = "; ".join(item.message for item in errors if item.message) or fallback or f"HTTP {status}"
    code = errors[0].code if errors else 0
    kind = _classify(status, code, message, bool(errors))
    kwargs: dict[str, Any] = {"code": code, "status": status, "errors": errors}
    if kind is ValidationFailed:
        return ValidationFailed(message, fields=_field_errors(errors), **kwargs)
    return kind(message, **kwargs)


def _classify(status: int, code: int, message: str, has_errors: bool) -> type[FluxserveAPIError]:
    """The error class for an answer, by HTTP status where it says something, else by code and text."""
    if status in (401, 403) or code in (98, 99) or _AUTH_RE.search(message):
        return AuthError
    if status == 429 or code == 96:
        return RateLimited
    if status >= 500 or (status >= 400 and not has_errors) or _SERVER_RE.search(message):
        return ServerError
    if status in (400, 422) or (code == 0 and _VALIDATION_RE.search(message)):
        return ValidationFailed
    if status == 404 or (code == 1 and _NOT_FOUND_RE.search(message)):
        return NotFound
    if code == 1:
        return Conflict
    return FluxserveAPIError


def _field_errors(errors: list[ApiError]) -> list[FieldError]:
    """One FieldError per ``Request parameter [name] what is allowed`` entry (Wiro's wording), or per
    ``name: what is allowed`` part (older fluxserve, several joined by ``; ``)."""
    fields = []
    for item in errors:
        wiro = _WIRO_FIELD_RE.match(item.message)
        if wiro:
            fields.append(FieldError(wiro.group(1), wiro.group(2)))
            continue
        for part in item.message.split("; "):
            match = _FIELD_RE.match(part)
            if match:
                fields.append(FieldError(match.group(1), match.group(2)))
    return fields
