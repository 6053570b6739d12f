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

_NOT_FOUND_RE = re.compile(r"not (be )?found|does not exist|doesn't exist|unknown|no such", re.IGNORECASE)
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
    kwargs: dict[str, Any] = {"code": code, "status": status, "errors": errors}
    if status in (401, 403):
        return AuthError(message, **kwargs)
    if status == 400 or status == 422:
        return ValidationFailed(message, fields=_field_errors(errors), **kwargs)
    if status == 404:
        return NotFound(message, **kwargs)
    if status == 429:
        return RateLimited(message, **kwargs)
    if status >= 500 or (status >= 400 and not errors):
        return ServerError(message, **kwargs)
    if code == 1:
        return NotFound(message, **kwargs) if _NOT_FOUND_RE.search(message) else Conflict(message, **kwargs)
    return FluxserveAPIError(message, **kwargs)


def _field_errors(errors: list[ApiError]) -> list[FieldError]:
    """The server words validation errors as ``field: what is allowed`` (several joined by ``; ``)."""
    fields = []
    for item in errors:
        for part in item.message.split("; "):
            match = _FIELD_RE.match(part)
            if match:
                fields.append(FieldError(match.group(1), match.group(2)))
    return fields
