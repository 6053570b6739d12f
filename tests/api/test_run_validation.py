"""Run: body formats, coercion of Wiro's string values, and a table of bad inputs."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"
GOOD = {"prompt": "a red fox", "steps": 4, "width": 64, "height": 64}


def _run(service: Service, **kwargs) -> httpx.Response:
    return service.post(f"/v1/Run/{KREA}", **kwargs)


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"steps": "abc"}, "steps", "must be integer or float"),
        ({"steps": 2.5}, "steps", "must be a whole number"),
        ({"steps": 0}, "steps", "between 1 and 100"),
        ({"steps": "101"}, "steps", "between 1 and 100"),
        ({"scale": "loud"}, "scale", "must be integer or float"),
        ({"scale": "nan"}, "scale", "finite"),
        ({"scale": -1}, "scale", "between 0 and 30"),
        ({"samples": 9}, "samples", "between 1 and 4"),
        ({"width": 100}, "width", "multiple of 16"),
        ({"height": 4096}, "height", "between 64 and 2048"),
        ({"seed": "lucky"}, "seed", "whole number"),
        ({"seed": -5}, "seed", "from 0 to"),
        ({"prompt": ""}, "prompt", "required"),
        ({"prompt": None}, "prompt", "required"),
        ({"prompt": ["a", "b"]}, "prompt", "must be text"),
    ],
)
def test_bad_inputs_name_the_field_and_what_is_allowed(
    queue_only_service: Service, fields, field, fragment
) -> None:
    body = {**GOOD, **fields}
    if fields.get("prompt", "x") is None:
        body.pop("prompt")
    response = _run(queue_only_service, json=body)
    assert response.status_code == 200  # error-reference.md: validation failures are HTTP 200
    payload = response.json()
    assert payload["result"] is False
    messages = [error["message"] for error in payload["errors"]]
    assert any(m.startswith(f"Request parameter [{field}] ") and fragment in m for m in messages), messages
    assert all(error["code"] == 0 for error in payload["errors"])


def test_every_invalid_field_is_reported_at_once(queue_only_service: Service) -> None:
    response = _run(queue_only_service, json={"prompt": "x", "steps": "many", "width": 33, "scale": "?"})
    fields = sorted(error["message"].split("[")[1].split("]")[0] for error in response.json()["errors"])
    assert fields == ["scale", "steps", "width"]


def test_an_out_of_range_value_reads_exactly_as_wiros_error_reference(queue_only_service: Service) -> None:
    response = _run(queue_only_service, json={**GOOD, "steps": 500})
    assert response.status_code == 200
    assert response.json() == {
        "result": False,
        "errors": [{"code": 0, "message": "Request parameter [steps] must be between 1 and 100"}],
    }


def test_unknown_tool_is_code_1_with_http_200(queue_only_service: Service) -> None:
    response = queue_only_service.post("/v1/Run/nobody/nothing", json=GOOD)
    assert response.status_code == 200
    assert response.json() == {
        "result": False,
        "errors": [{"code": 1, "message": response.json()["errors"][0]["message"]}],
    }
    message = response.json()["errors"][0]["message"]
    assert message.startswith("slug-owner-project-not-exist") and "nobody/nothing" in message


@pytest.mark.parametrize(
    ("content", "content_type", "fragment"),
    [
        (b'{"prompt": "x", ', "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
        (b'{"prompt": "x"', "multipart/form-data", "not valid JSON"),
        (b"\xff\xfe\x00", "application/json", "not UTF-8"),
    ],
)
def test_malformed_bodies_answer_200_code_0(
    queue_only_service: Service, content, content_type, fragment
) -> None:
    response = _run(queue_only_service, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 200 and response.json()["result"] is False
    [error] = response.json()["errors"]
    assert error["code"] == 0
    assert error["message"].startswith("Request parameters are invalid.") and fragment in error["message"]


def _queued_parameters(service: Service, response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return service.detail(response.json()["taskid"])["parameters"]


def test_json_under_a_multipart_header_without_boundary_is_accepted(queue_only_service: Service) -> None:
    """What the seeds' curl sends."""
    content = json.dumps({**GOOD, "scale": "4.5", "seed": "3572004920"}).encode()
    response = _run(queue_only_service, content=content, headers={"Content-Type": "multipart/form-data"})
    parameters = _queued_parameters(queue_only_service, response)
    assert parameters["scale"] == "4.5" and parameters["seed"] == "3572004920" and parameters["steps"] == "4"


def test_real_multipart_and_urlencoded_bodies_are_accepted(queue_only_service: Service) -> None:
    fields = {key: str(value) for key, value in GOOD.items()}
    multipart = _run(queue_only_service, data=fields, files={"unused": ("a.txt", b"x")})
    assert multipart.status_code == 200 and "unused" in multipart.json()["errors"][0]["message"]
    multipart = _run(queue_only_service, files={key: (None, value) for key, value in fields.items()})
    assert _queued_parameters(queue_only_service, multipart)["width"] == "64"
    urlencoded = _run(queue_only_service, data=fields)
    assert _queued_parameters(queue_only_service, urlencoded)["prompt"] == "a red fox"


def test_defaults_come_from_the_seed_and_values_are_echoed_as_strings(queue_only_service: Service) -> None:
    parameters = _queued_parameters(
        queue_only_service, _run(queue_only_service, json={"prompt": "only a prompt"})
    )
    assert parameters == {
        "prompt": "only a prompt",
        "steps": "25",
        "scale": "4.5",
        "samples": "1",
        "seed": "3572004920",
        "width": "1024",
        "height": "1024",
    }


def test_an_empty_seed_picks_a_random_one_and_records_it(queue_only_service: Service) -> None:
    parameters = _queued_parameters(queue_only_service, _run(queue_only_service, json={**GOOD, "seed": ""}))
    assert parameters["seed"].isdigit()


def test_a_callback_url_that_is_not_a_url_is_kept_and_explained(queue_only_service: Service) -> None:
    response = _run(queue_only_service, json={**GOOD, "callbackUrl": "You can provide a callback URL"})
    task = queue_only_service.detail(response.json()["taskid"])
    assert task["callbackurl"] == "You can provide a callback URL"
    assert "not an http(s) URL" in task["debugoutput"]


def test_unknown_route_and_wrong_method_answer_in_the_error_shape(queue_only_service: Service) -> None:
    unknown_endpoint = {"result": False, "errors": [{"code": 0, "message": "Error parsing url."}]}
    missing = queue_only_service.post("/v1/Nothing/Here", json={})
    assert missing.status_code == 404 and missing.json() == unknown_endpoint
    wrong = httpx.get(f"{queue_only_service.base_url}/v1/Task/Detail")
    assert wrong.status_code == 404 and wrong.json() == unknown_endpoint


@pytest.mark.parametrize("taskid", ["99999999999999999999999999", "-1", "１", "1; drop table tasks"])
def test_odd_task_ids_are_simply_unknown(queue_only_service: Service, taskid: str) -> None:
    response = queue_only_service.post("/v1/Task/Detail", json={"taskid": taskid})
    assert response.status_code == 200
    assert response.json() == {"result": False, "errors": [{"code": 1, "message": "There is no task yet."}]}


@pytest.mark.parametrize("body", [{}, {"taskid": ""}, {"socketaccesstoken": "  "}])
def test_a_task_action_without_an_identifier_is_code_0(queue_only_service: Service, body: dict) -> None:
    for action in ("Detail", "Cancel", "Kill"):
        response = queue_only_service.post(f"/v1/Task/{action}", json=body)
        assert response.status_code == 200
        assert response.json() == {
            "result": False,
            "errors": [{"code": 0, "message": "taskid or socketaccesstoken is required"}],
        }


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": {"nested": True}},
        {"prompt": "x", "steps": 1e308, "width": 2**70},
        {"prompt": "x", "seed": "1e30"},
        {"prompt": "\u0000\ud7ff" * 10, "steps": "  7  ", "width": " 64", "height": "64 "},
    ],
)
def test_strange_values_never_cause_a_server_error(queue_only_service: Service, body: dict) -> None:
    response = _run(queue_only_service, json=body)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["result"], bool)
