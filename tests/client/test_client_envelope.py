"""Responses map to typed errors carrying code, message and HTTP status."""

from __future__ import annotations

import httpx
import pytest

from fluxserve.client.envelope import read_envelope
from fluxserve.client.errors import (
    AuthError,
    Conflict,
    FluxserveAPIError,
    NotFound,
    RateLimited,
    ServerError,
    ValidationFailed,
)


def response(status: int, body) -> httpx.Response:
    if isinstance(body, (dict, list)):
        return httpx.Response(status, json=body)
    return httpx.Response(status, content=body)


def test_success_returns_the_body():
    body = {"errors": [], "taskid": "1", "socketaccesstoken": "t", "result": True}
    assert read_envelope(response(200, body)) == body


@pytest.mark.parametrize(
    ("status", "code", "message", "kind"),
    [
        (401, 0, "invalid signature", AuthError),
        (401, 0, "Project authorization is not valid.", AuthError),
        (200, 99, "Authorization bearer token is invalid.", AuthError),
        (400, 0, "steps: must be between 1 and 100, got 500", ValidationFailed),
        (200, 0, "Request parameter [steps] must be between 1 and 100", ValidationFailed),
        (200, 0, "Request files [inputImage] required", ValidationFailed),
        (200, 0, "Request parameters are invalid.", ValidationFailed),
        (200, 0, "taskid or socketaccesstoken is required", ValidationFailed),
        (200, 1, "Task '99' does not exist", NotFound),
        (200, 1, "There is no task yet.", NotFound),
        (200, 1, "slug-owner-project-not-exist", NotFound),
        (404, 0, "Error parsing url.", NotFound),
        (200, 1, "task 5 is running; use Kill", Conflict),
        (200, 1, "Task is not in a cancellable state.", Conflict),
        (200, 1, "Task could not be killed: it has already ended", Conflict),
        (200, 96, "You have reached your concurrent task limit.", RateLimited),
        (429, 0, "slow down", RateLimited),
        (503, 0, "no worker", ServerError),
        (200, 0, "Internal server error; the server log has the details.", ServerError),
        (200, 97, "Insufficient balance", FluxserveAPIError),
        (200, 7, "odd", FluxserveAPIError),
    ],
)
def test_errors_are_typed(status, code, message, kind):
    with pytest.raises(kind) as caught:
        read_envelope(response(status, {"result": False, "errors": [{"code": code, "message": message}]}))
    assert type(caught.value) is kind
    assert (caught.value.code, caught.value.status, caught.value.message) == (code, status, message)


def test_validation_error_lists_fields():
    body = {
        "result": False,
        "errors": [{"code": 0, "message": "width: must be a multiple of 16; steps: too big"}],
    }
    with pytest.raises(ValidationFailed) as caught:
        read_envelope(response(400, body))
    assert [item.field for item in caught.value.fields] == ["width", "steps"]


def test_wiro_validation_entries_become_one_field_each():
    body = {
        "result": False,
        "errors": [
            {"code": 0, "message": "Request parameter [steps] must be between 1 and 100"},
            {"code": 0, "message": "Request files [inputImage] required"},
        ],
    }
    with pytest.raises(ValidationFailed) as caught:
        read_envelope(response(200, body))
    assert [(item.field, item.message) for item in caught.value.fields] == [
        ("steps", "must be between 1 and 100"),
        ("inputImage", "required"),
    ]


def test_result_false_without_errors_is_still_an_error():
    with pytest.raises(FluxserveAPIError):
        read_envelope(response(200, {"result": False, "errors": []}))


def test_non_json_body_is_a_server_error():
    with pytest.raises(ServerError, match="not JSON"):
        read_envelope(response(502, b"<html>bad gateway</html>"))
