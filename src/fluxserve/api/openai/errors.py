"""fluxserve's errors in OpenAI's shape and with OpenAI's HTTP statuses.

The Wiro routes answer errors with HTTP 200 and ``result: false`` (``api/errors.py``); the OpenAI
routes answer ``{"error": {"message", "type", "param", "code"}}`` with the status the official
SDKs turn into the right exception (400 BadRequestError, 401 AuthenticationError, 404
NotFoundError, 409 ConflictError, 413, 429 RateLimitError, 500 InternalServerError, 504). This
module is the one place where that mapping lives; :class:`OpenAIRoute` applies it to every
OpenAI route.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fluxserve.api.body import BodyTooLarge
from fluxserve.errors import (
    AuthenticationError,
    ClientError,
    ConflictError,
    LimitReachedError,
    NotFoundError,
    ToolUnavailableError,
    ValidationError,
)

log = logging.getLogger(__name__)

NO_RETRY = {"x-should-retry": "false"}
"""The OpenAI SDKs retry 408/409/429/5xx unless told not to; a retry would queue new tasks."""


OPENAI_PATHS = ("/v1/images/", "/v1/models")


def is_openai_path(path: str) -> bool:
    """Whether a request path is one of the OpenAI routes (their errors use OpenAI's shape)."""
    return path.startswith(OPENAI_PATHS)


class OpenAIError(Exception):
    """An answer in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = NO_RETRY if self.status >= 500 or self.status == 409 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def from_client_error(exc: ClientError) -> OpenAIError:
    """The OpenAI answer for one of fluxserve's client errors."""
    if isinstance(exc, ValidationError):
        param = exc.errors[0].field if exc.errors else None
        return OpenAIError(400, str(exc), param=param, code="invalid_value")
    if isinstance(exc, BodyTooLarge):
        return OpenAIError(413, str(exc), code="request_too_large")
    if isinstance(exc, AuthenticationError):
        return OpenAIError(401, str(exc), code="invalid_api_key")
    if isinstance(exc, NotFoundError):
        return OpenAIError(404, str(exc), code="not_found")
    if isinstance(exc, ToolUnavailableError):
        return OpenAIError(404, str(exc), param="model", code="model_not_available")
    if isinstance(exc, ConflictError):
        return OpenAIError(409, str(exc), code="conflict")
    if isinstance(exc, LimitReachedError):  # concurrency or queue limits: retry later
        return OpenAIError(429, str(exc), kind="rate_limit_exceeded", code="rate_limit_exceeded")
    return OpenAIError(400, str(exc))


def as_openai_error(exc: Exception) -> OpenAIError:
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, ClientError):
        return from_client_error(exc)
    if isinstance(exc, RequestValidationError):
        return OpenAIError(400, "Invalid request.")
    log.exception("unhandled error in an OpenAI route", exc_info=exc)
    return OpenAIError(500, "Internal server error; the server log has the details.", kind="server_error")


class OpenAIRoute(APIRoute):
    """An APIRoute whose errors come out in OpenAI's shape instead of Wiro's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error of these routes answers in OpenAI's shape
                return as_openai_error(exc).response()

        return openai_handler
