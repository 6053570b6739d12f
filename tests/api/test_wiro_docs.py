"""Every endpoint's answer next to the examples of Wiro's own documentation, field by field.

The examples live in tests/fixtures/wiro_docs (each file names the document it was copied from):
models.md and model-parameters.md (Tool/List, Tool/Detail), tasks.md (Task/Detail and the fields
Wiro's MCP server reads), error-reference.md (every error fluxserve can produce, with its HTTP
status) and websocket.md (the socket's frames and their order).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.support.live import follow, is_progress, run_krea
from tests.support.service import Service
from tests.support.wiro_docs import doc, json_type, message_matches, shape_problems

KREA = "black-forest-labs/FLUX.1-Krea-dev"
KONTEXT = "wiro/flux_kontext_dev_with_2_image"
SMALL = {"prompt": "a red fox", "steps": "2", "width": "64", "height": "64"}


# --- Tool/List and Tool/Detail (models.md, model-parameters.md) ---------------------------------


def test_tool_list_has_every_field_of_the_documented_example(queue_only_service: Service) -> None:
    example = doc("models_tool_list")["example"]
    for summary in (True, False):
        response = queue_only_service.post("/v1/Tool/List", json={"summary": summary})
        assert response.status_code == 200
        assert shape_problems(example, response.json()) == []
    assert response.json()["total"] == 5 and len(response.json()["tool"]) == 5


def test_tool_detail_has_every_field_of_the_documented_example(queue_only_service: Service) -> None:
    documents = doc("models_tool_detail")
    example = documents["example"]
    example["tool"][0]["inspire"] = [{}]  # an example request: its keys are the tool's own inputs
    for tool in (KREA, KONTEXT, "wiro/text-to-image-flux-lora-fast"):
        owner, project = tool.split("/")
        response = queue_only_service.post(
            "/v1/Tool/Detail", json={"slugowner": owner, "slugproject": project}
        )
        assert response.status_code == 200
        body = response.json()
        assert shape_problems(example, body) == [], tool
        [item] = body["tool"]
        assert f"{item['cleanslugowner']}/{item['cleanslugproject']}" == tool  # the Run path
        for group in item["parameters"]:
            for parameter in group["items"]:
                assert shape_problems(documents["parameter_item"], parameter) == [], parameter["id"]
                assert parameter["type"] in documents["parameter_types"]["types"]


def test_tool_detail_of_kontext_has_two_file_inputs_run_accepts_as_documented(
    queue_only_service: Service,
) -> None:
    owner, project = KONTEXT.split("/")
    item = queue_only_service.post(
        "/v1/Tool/Detail", json={"slugowner": owner, "slugproject": project}
    ).json()
    files = [p for group in item["tool"][0]["parameters"] for p in group["items"] if p["type"] == "fileinput"]
    assert [(p["id"], p["required"]) for p in files] == [("inputImage", True), ("inputImage2", True)]
    # model-parameters.md: a URL in {id}Url, or directly in {id}; the other one may be empty
    answer = queue_only_service.post(
        f"/v1/Run/{KONTEXT}",
        data={"prompt": "p", "inputImage": "", "inputImageUrl": "http://127.0.0.1:9/a.png",
              "inputImage2": "http://127.0.0.1:9/b.png"},
        files={"unused-part-makes-this-multipart": (None, "")},
    )  # fmt: skip
    assert answer.json()["result"] is True, answer.text
    parameters = queue_only_service.detail(answer.json()["taskid"])["parameters"]
    assert parameters["inputImageUrl"] == "http://127.0.0.1:9/a.png"
    assert parameters["inputImage2Url"] == "http://127.0.0.1:9/b.png"


# --- Task/Detail, Task/List, Cancel, Kill (tasks.md, Wiro-MCP) ----------------------------------


@pytest.fixture(scope="module")
def finished(service: Service) -> dict:
    return service.wait(service.run(KREA, **SMALL)["taskid"])


def test_task_detail_and_list_have_every_field_of_the_documented_example(
    service: Service, finished: dict
) -> None:
    documents = doc("tasks_detail")
    detail = service.post("/v1/Task/Detail", json={"tasktoken": finished["socketaccesstoken"]})
    assert detail.status_code == 200
    assert shape_problems(documents["example"], detail.json()) == []
    listed = service.post("/v1/Task/List", json={}).json()
    assert shape_problems({**documents["example"], "total": "1"}, listed) == []
    [task] = detail.json()["tasklist"]
    assert shape_problems(documents["client_fields"], task) == []
    assert (task["modelslugowner"], task["modelslugproject"]) == tuple(KREA.split("/"))
    assert task["modeldescription"].startswith("FLUX.1-Krea-dev is a tool")


def test_a_failed_task_costs_nothing_as_tasks_md_shows(service: Service) -> None:
    unreachable = "http://127.0.0.1:9/missing.png"
    taskid = service.run(
        KONTEXT, prompt="p", inputImageUrl=unreachable, inputImage2Url=unreachable, steps="1"
    )["taskid"]
    task = service.wait(taskid)
    assert task["pexit"] != "0"
    assert task["totalcost"] == doc("tasks_detail")["failed_totalcost"]["totalcost"]


def test_cancel_and_kill_answer_tasks_in_the_documented_shape(queue_only_service: Service) -> None:
    example = doc("tasks_detail")["example"]
    token = queue_only_service.run(KREA, **SMALL)["socketaccesstoken"]
    cancelled = queue_only_service.post("/v1/Task/Cancel", json={"tasktoken": token})  # as Wiro-MCP sends it
    assert cancelled.status_code == 200
    assert (
        shape_problems({key: example[key] for key in ("result", "errors", "tasklist")}, cancelled.json())
        == []
    )
    token = queue_only_service.run(KREA, **SMALL)["socketaccesstoken"]
    killed = queue_only_service.post("/v1/Task/Kill", json={"tasktoken": token})  # queued: cancelled at once
    assert killed.json()["tasklist"][0]["status"] == "task_cancel"


# --- every error of error-reference.md that fluxserve can produce -------------------------------


def _producers(service: Service) -> dict[str, Callable[[], httpx.Response]]:
    url = service.base_url

    def detail(headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{url}/v1/Task/Detail", json={"taskid": "1"}, headers=headers)

    def cancelled_twice(action: str) -> httpx.Response:
        taskid = service.run(KREA, **SMALL)["taskid"]
        service.post("/v1/Task/Cancel", json={"taskid": taskid})
        return service.post(f"/v1/Task/{action}", json={"taskid": taskid})

    signed = service.headers()
    return {
        "api key not found": lambda: detail({**signed, "x-api-key": "nope"}),
        "signature required": lambda: detail({"x-api-key": signed["x-api-key"]}),
        "invalid signature": lambda: detail({**signed, "x-signature": "0" * 64}),
        "endpoint not found": lambda: service.post("/v1/Nothing/Here", json={}),
        "missing parameter": lambda: service.post(f"/v1/Run/{KREA}", json={**SMALL, "prompt": ""}),
        "invalid number": lambda: service.post(f"/v1/Run/{KREA}", json={**SMALL, "steps": "many"}),
        "out of range": lambda: service.post(f"/v1/Run/{KREA}", json={**SMALL, "steps": "500"}),
        "file required": lambda: service.post(f"/v1/Run/{KONTEXT}", json={"prompt": "p"}),
        "invalid request body": lambda: service.post(
            f"/v1/Run/{KREA}", content=b'{"prompt": ', headers={"Content-Type": "application/json"}
        ),
        "model not accessible": lambda: service.post(
            "/v1/Run/black-forest-labs/flux-2-pro-t2i", json={"prompt": "x"}
        ),
        "model not found": lambda: service.post("/v1/Run/nobody/nothing", json={"prompt": "x"}),
        "task not found": lambda: service.post("/v1/Task/Detail", json={"taskid": "987654321"}),
        "missing identifier": lambda: service.post("/v1/Task/Detail", json={}),
        "not cancellable": lambda: cancelled_twice("Cancel"),
        "kill failed": lambda: cancelled_twice("Kill"),
    }


ELSEWHERE = {
    "ip not allowed": "tests/api/test_projects_http.py (a project with an IP allow-list)",
    "concurrent task limit": "tests/api/test_projects_http.py (a project with max_concurrent)",
}


HERE = [entry for entry in doc("error_reference")["errors"] if entry["case"] not in ELSEWHERE]


def test_every_documented_error_is_produced_here_or_in_the_named_test(queue_only_service: Service) -> None:
    cases = {entry["case"] for entry in doc("error_reference")["errors"]}
    assert set(_producers(queue_only_service)) == {entry["case"] for entry in HERE}
    assert cases == {entry["case"] for entry in HERE} | set(ELSEWHERE)


@pytest.mark.parametrize("entry", HERE, ids=lambda entry: entry["case"])
def test_each_documented_error_has_its_code_message_and_http_status(
    queue_only_service: Service, entry: dict
) -> None:
    response = _producers(queue_only_service)[entry["case"]]()
    assert response.status_code == entry["http"], response.text
    body = response.json()
    assert shape_problems(doc("error_reference")["shape"], body) == []
    assert body["result"] is False and body["errors"]
    first = body["errors"][0]
    assert first["code"] == entry["code"], body
    assert message_matches(entry["message"], entry["match"], first["message"]), first["message"]


def test_several_bad_fields_give_one_documented_entry_each(queue_only_service: Service) -> None:
    response = queue_only_service.post(
        f"/v1/Run/{KREA}", json={**SMALL, "steps": "500", "scale": "x", "width": "1"}
    )
    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"code": 0, "message": "Request parameter [steps] must be between 1 and 100"},
        {"code": 0, "message": "Request parameter [scale] must be integer or float"},
        {"code": 0, "message": "Request parameter [width] must be between 64 and 2048"},
    ]


# --- the socket (websocket.md) ------------------------------------------------------------------


def _documented_order() -> list[str]:
    """websocket.md's order, except that task_assign comes before the preprocessing frames: the
    seeds list task_queue, task_accept, task_assign, task_preprocess_start, … and fluxserve follows
    them where the two documents disagree."""
    order = list(doc("websocket")["message_types"])
    order.remove("task_assign")
    order.insert(order.index("task_preprocess_start"), "task_assign")
    return order


def test_socket_frames_follow_websocket_md(service: Service) -> None:
    documents = doc("websocket")
    run = run_krea(service, steps=2)
    frames = follow(service, run["socketaccesstoken"])
    acknowledgement, *events = frames
    assert acknowledgement == {
        "type": "task_info",
        "id": run["taskid"],
        "tasktoken": run["socketaccesstoken"],
        "message": None,
        "result": True,
    }
    order = _documented_order()
    kinds = [frame["type"] for frame in events]
    assert all(kind in order for kind in kinds), kinds
    positions = [order.index(kind) for kind in kinds]
    assert positions == sorted(positions), kinds  # never out of the documented order
    assert [kind for kind in dict.fromkeys(kinds)] == [
        "task_queue", "task_accept", "task_assign", "task_preprocess_start", "task_preprocess_end",
        "task_start", "task_output", "task_output_full", "task_end", "task_postprocess_start",
        "task_postprocess_end",
    ]  # fmt: skip
    for frame in events:
        kind = frame["type"]
        example = documents["messages"].get(kind, documents["messages"]["task_queue"])
        assert shape_problems({**example, "message": None}, frame) == [], frame
        if kind in ("task_output_full",) or is_progress(frame):
            continue
        if kind == "task_postprocess_end":
            assert shape_problems(example, frame) == []
            assert [output["name"] for output in frame["message"]] == ["0.png"]
        elif kind != "task_output" or frame["message"] in (None, ""):
            assert frame["message"] is None, frame  # lifecycle frames: "message": null
    full = next(frame for frame in events if frame["type"] == "task_output_full")
    assert json_type(full["message"]) == "string"
    detail = service.detail(run["taskid"])
    assert full["message"] == detail["debugoutput"]  # the whole stdout log, once, after the run
    assert json.loads(json.dumps(frames)) == frames
