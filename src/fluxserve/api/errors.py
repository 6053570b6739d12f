"""The one place where fluxserve's errors become HTTP answers in Wiro's error shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from fluxserve.api.body import BodyTooLarge
from fluxserve.errors import (
    AuthenticationError,
    ClientError,
    ConflictError,
    LimitReachedError,
    MalformedRequestError,
    NotFoundError,
    ToolUnavailableError,
    ValidationError,
)
from fluxserve.wire import error_body

log = logging.getLogger(__name__)

# Unknown tool/task answer 200 with result false: clients probe their credentials with a Detail of
# a made-up task and expect a 2xx. An unconfigured tool is the same family (code 1, not transient).
_STATUS: list[tuple[type[ClientError], int]] = [
    (BodyTooLarge, 413),
    (ValidationError, 400),
    (MalformedRequestError, 400),
    (AuthenticationError, 401),
    (NotFoundError, 200),
    (ToolUnavailableError, 200),
    (LimitReachedError, 200),  # Wiro's code 96 answers HTTP 200
    (ConflictError, 409),
]


def http_status(exc: ClientError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


def error_response(exc: ClientError) -> JSONResponse:
    if isinstance(exc, ValidationError):
        errors = [(exc.code, str(error)) for error in exc.errors]
    else:
        errors = [(exc.code, str(exc))]
    return JSONResponse(error_body(errors), status_code=http_status(exc))


async def _client_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClientError)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(error_body([(exc.status_code, str(exc.detail))]), status_code=exc.status_code)


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body([(0, "Invalid request.")]), status_code=400)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body([(99, "Internal server error; the server log has the details.")]), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientError, _client_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
