"""The one place where fluxserve's errors become HTTP answers in Wiro's error shape.

Wiro's error reference (``markdown/error-reference.md``): every answer is HTTP 200 and
``result: false`` tells a failure, except authentication failures (401) and an unknown endpoint
(404, code 0, "Error parsing url."). fluxserve adds 413 for a body over the size limit. Messages
start with the reference's wording where it has one; a sentence may follow that says what exactly
is wrong when the caller cannot know it (which credential failed, the task's status):

=====================================  ====  =====================================================
error                                  code  message
=====================================  ====  =====================================================
invalid field (one entry per field)    0     ``Request parameter [steps] must be between 1 and 100``
missing required file input            0     ``Request files [inputImage] required``
body not parseable                     0     ``Request parameters are invalid. <why>``
Task/* without an identifier           0     ``taskid or socketaccesstoken is required``
unknown task                           1     ``There is no task yet.``
unknown tool                           1     ``slug-owner-project-not-exist: <which, known tools>``
tool not runnable here                 1     ``tool-not-accessible: <why>``
Cancel of a task no longer queued      1     ``Task is not in a cancellable state. <why>``
Kill of an ended task                  1     ``Task could not be killed: <why>``
=====================================  ====  =====================================================
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from fluxserve.api.body import BodyTooLarge
from fluxserve.api.responses import JSONResponse
from fluxserve.errors import (
    AuthenticationError,
    ClientError,
    FieldError,
    MalformedRequestError,
    MissingIdentifierError,
    NotCancellableError,
    NotKillableError,
    TaskNotFoundError,
    ToolNotFoundError,
    ToolUnavailableError,
    ValidationError,
)
from fluxserve.wire import error_body

log = logging.getLogger(__name__)

# Everything not listed answers HTTP 200 with result false.
_STATUS: list[tuple[type[ClientError], int]] = [
    (BodyTooLarge, 413),
    (AuthenticationError, 401),
]

UNKNOWN_ENDPOINT = "Error parsing url."
INVALID_REQUEST = "Request parameters are invalid."
MISSING_TASK_IDENTIFIER = "taskid or socketaccesstoken is required"
TASK_NOT_FOUND = "There is no task yet."
NOT_CANCELLABLE = "Task is not in a cancellable state."
INTERNAL_ERROR = "Internal server error; the server log has the details."


def http_status(exc: ClientError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 200)


def field_message(error: FieldError) -> str:
    """``Request parameter [steps] must be between 1 and 100`` / ``Request files [inputImage] required``."""
    return f"Request {'files' if error.file else 'parameter'} [{error.field}] {error.message}"


def wire_errors(exc: ClientError) -> list[tuple[int, str]]:
    """The ``(code, message)`` entries of ``exc`` in Wiro's wording."""
    if isinstance(exc, ValidationError):
        return [(exc.code, field_message(error)) for error in exc.errors]
    if isinstance(exc, TaskNotFoundError):
        message = TASK_NOT_FOUND
    elif isinstance(exc, ToolNotFoundError):
        message = f"slug-owner-project-not-exist: {exc}"
    elif isinstance(exc, ToolUnavailableError):
        message = f"tool-not-accessible: {exc}"
    elif isinstance(exc, NotCancellableError):
        message = f"{NOT_CANCELLABLE} {exc}"
    elif isinstance(exc, NotKillableError):
        message = f"Task could not be killed: {exc}"
    elif isinstance(exc, MissingIdentifierError):
        message = MISSING_TASK_IDENTIFIER
    elif isinstance(exc, MalformedRequestError) and not isinstance(exc, BodyTooLarge):
        message = f"{INVALID_REQUEST} {exc}"
    else:
        message = str(exc)
    return [(exc.code, message)]


def error_response(exc: ClientError) -> JSONResponse:
    return JSONResponse(error_body(wire_errors(exc)), status_code=http_status(exc))


async def _client_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClientError)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    """Routing errors: no such path, or no such method on it, is Wiro's unknown endpoint."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (404, 405):
        return JSONResponse(error_body([(0, UNKNOWN_ENDPOINT)]), status_code=404)
    return JSONResponse(error_body([(0, str(exc.detail))]), status_code=200)


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body([(0, INVALID_REQUEST)]), status_code=200)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: code 0 (Wiro's "server-side error", retryable), HTTP 200 like every other answer."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body([(0, INTERNAL_ERROR)]), status_code=200)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientError, _client_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
