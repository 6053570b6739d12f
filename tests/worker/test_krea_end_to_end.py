"""FLUX.1-Krea-dev end to end over HTTP on the tiny weights: the seeds' curl, outputs, determinism."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from tests.support.seeds import run_seed_curl
from tests.support.service import Service
from tests.support.shared import own_project

KREA = "black-forest-labs/FLUX.1-Krea-dev"
SMALL = {"prompt": "a lighthouse at dusk", "steps": 3, "width": 80, "height": 64, "seed": "7"}
TIME_FIELDS = [
    "createtime",
    "accepttime",
    "assigntime",
    "preprocessstarttime",
    "preprocessendtime",
    "starttime",
]


def _png(service: Service, output: dict) -> Image.Image:
    response = httpx.get(output["url"], timeout=30)  # no signature: the access key is in the path
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert len(response.content) == int(output["size"])
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return image


def test_the_seed_curl_runs_verbatim_and_its_detail_curls_find_the_task(service: Service) -> None:
    answer = run_seed_curl(service, KREA)
    assert answer["result"] is True and answer["errors"] == []
    assert set(answer) == {"errors", "taskid", "socketaccesstoken", "result"}
    task = service.wait(answer["taskid"], timeout=300)
    assert task["status"] == "task_postprocess_end", task["debugerror"]
    assert task["pexit"] == "0" and task["debugerror"] == ""
    assert task["parameters"]["seed"] == "3572004920" and task["parameters"]["steps"] == "25"
    assert _png(service, task["outputs"][0]).size == (1024, 1024)

    by_id = run_seed_curl(
        service,
        KREA,
        "Get Task Detail - Make HTTP Post Request with Task ID",
        ('"2221"', f'"{answer["taskid"]}"'),
    )
    by_token = run_seed_curl(
        service,
        KREA,
        "Get Task Detail - Make HTTP Post Request with Socket Access Token",
        ("eDcCm5yyUfIvMFspTwww49OUfgXkQt", answer["socketaccesstoken"]),
    )
    assert by_id["tasklist"][0]["id"] == by_token["tasklist"][0]["id"] == answer["taskid"]
    by_uuid = service.post("/v1/Task/Detail", json={"uuid": task["uuid"]}).json()
    assert by_uuid["tasklist"][0]["id"] == answer["taskid"]


def test_detail_shows_every_seed_field_as_strings(service: Service) -> None:
    task = service.wait(service.run(KREA, **SMALL)["taskid"])
    for field in (
        "id",
        "uuid",
        "socketaccesstoken",
        "status",
        "pexit",
        "elapsedseconds",
        "size",
        *TIME_FIELDS,
    ):
        assert isinstance(task[field], str), field
    times = [int(task[field]) for field in TIME_FIELDS] + [
        int(task["endtime"]),
        int(task["postprocessendtime"]),
    ]
    assert all(times) and times == sorted(times)
    assert task["canceltime"] == "0"
    output = task["outputs"][0]
    assert (
        output["name"] == "0.png" and output["contenttype"] == "image/png" and output["uuid"] == task["uuid"]
    )
    assert set(output) >= {
        "id",
        "name",
        "contenttype",
        "parentid",
        "uuid",
        "size",
        "addedtime",
        "modifiedtime",
        "accesskey",
        "url",
    }
    assert _png(service, output).size == (80, 64)


def test_same_inputs_and_seed_give_identical_bytes_and_another_seed_does_not(service: Service) -> None:
    first = service.wait(service.run(KREA, **SMALL)["taskid"])
    second = service.wait(service.run(KREA, **SMALL)["taskid"])
    other = service.wait(service.run(KREA, **{**SMALL, "seed": "8"})["taskid"])
    data = [httpx.get(task["outputs"][0]["url"]).content for task in (first, second, other)]
    assert data[0] == data[1]
    assert data[0] != data[2]


def test_samples_two_gives_two_different_images(service: Service) -> None:
    task = service.wait(service.run(KREA, **{**SMALL, "samples": 2})["taskid"])
    assert [o["name"] for o in task["outputs"]] == ["0.png", "1.png"]
    first, second = (httpx.get(o["url"]).content for o in task["outputs"])
    assert first != second
    assert int(task["size"]) == sum(int(o["size"]) for o in task["outputs"])


def test_task_list_is_newest_first_with_paging(service: Service) -> None:
    service = own_project(service, "paging")  # a list of its own: the server is shared with parallel tests
    ids = [service.run(KREA, **SMALL)["taskid"] for _ in range(3)]
    for taskid in ids:
        service.wait(taskid)
    page = service.post("/v1/Task/List", json={"start": "0", "limit": "2"}).json()
    assert [t["id"] for t in page["tasklist"]] == ids[::-1][:2]
    assert int(page["total"]) >= 3
    bad = service.post("/v1/Task/List", json={"limit": "0"})
    assert bad.status_code == 200 and bad.json()["result"] is False
    assert bad.json()["errors"][0]["message"] == "Request parameter [limit] must be between 1 and 1000"
