"""The partner tools end to end: the seeds' curl examples, verbatim, against a running service.

Through BFL, the service talks to a loopback test double of BFL's API (tests/engines/fake_bfl.py);
locally, it runs the tiny FLUX.2 / FLUX.1 weights. The only change to the seeds' commands is the
base URL (and the API key/secret placeholders of the header recipe).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.engines.fake_bfl import FakeBfl
from tests.support.seeds import run_seed_curl
from tests.support.service import Service

ULTRA = "black-forest-labs/flux-pro-1-1-ultra"
FLUX2 = "black-forest-labs/flux-2-pro-t2i"


def image_of(service: Service, output: dict) -> Image.Image:
    response = httpx.get(output["url"], timeout=30)
    assert response.status_code == 200
    assert len(response.content) == int(output["size"])
    return Image.open(io.BytesIO(response.content))


@pytest.fixture(scope="module")
def fake_bfl() -> Iterator[FakeBfl]:
    server = FakeBfl(api_key="bfl-operator-secret-key-42").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bfl_service(
    tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path, fake_bfl: FakeBfl
) -> Iterator[Service]:
    env = {"BFL_API_KEY": fake_bfl.api_key, "FLUXSERVE_BFL_URL": fake_bfl.base_url}
    server = Service(
        tmp_path_factory.mktemp("bfl-svc"), weights=str(tiny_weights_dir), env_overrides=env
    ).start()
    yield server
    server.stop()


@pytest.fixture
def local_service(partner_local_service: Service) -> Service:
    """The run's shared server whose partner tools run locally (tests/conftest.py)."""
    return partner_local_service


def reset(fake: FakeBfl, **changes) -> None:
    fake.requests.clear()
    fake.pending_polls, fake.final_status, fake.final_details = 2, "Ready", None
    for name, value in changes.items():
        setattr(fake, name, value)


# --- through BFL -------------------------------------------------------------------------------------


def test_ultra_seed_curl_through_bfl(bfl_service: Service, fake_bfl: FakeBfl) -> None:
    reset(fake_bfl)
    answer = run_seed_curl(bfl_service, ULTRA)
    assert answer["result"] is True and answer["errors"] == [] and answer["taskid"]
    task = bfl_service.wait(answer["taskid"])
    assert (task["status"], task["pexit"], task["debugerror"]) == ("task_postprocess_end", "0", "")
    assert task["debugoutput"].startswith("BFL flux-pro-1.1-ultra, request id ")
    [output] = task["outputs"]
    assert (output["name"], output["contenttype"]) == ("0.png", "image/png")
    assert image_of(bfl_service, output).format == "PNG"
    [submit] = fake_bfl.of("submit")
    assert submit.path == "/v1/flux-pro-1.1-ultra" and submit.headers["x-key"] == fake_bfl.api_key
    assert submit.body["prompt"].startswith("A quiet, sun-drenched Los Angeles street")
    assert {k: v for k, v in submit.body.items() if k != "prompt"} == {
        "prompt_upsampling": False,
        "safety_tolerance": 2,
        "aspect_ratio": "16:9",
        "seed": 42,
        "output_format": "png",
    }
    assert len(fake_bfl.of("poll")) == 3 and len(fake_bfl.of("delivery")) == 1


def test_flux2_seed_curl_through_bfl(bfl_service: Service, fake_bfl: FakeBfl) -> None:
    reset(fake_bfl)
    answer = run_seed_curl(bfl_service, FLUX2)
    task = bfl_service.wait(answer["taskid"])
    assert (task["status"], task["pexit"]) == ("task_postprocess_end", "0")
    assert task["debugoutput"].startswith("BFL flux-2-pro, request id ")
    assert [o["name"] for o in task["outputs"]] == ["0.png"]
    [submit] = fake_bfl.of("submit")
    assert submit.path == "/v1/flux-2-pro"
    assert submit.body == {
        "prompt": "",
        "width": 1024,
        "height": 1024,
        "safety_tolerance": 2,
        "seed": 123,
        "output_format": "png",
    }


def test_jpeg_output_is_stored_as_0_jpeg(bfl_service: Service, fake_bfl: FakeBfl) -> None:
    reset(fake_bfl)
    answer = bfl_service.run(FLUX2, prompt="a fox", width="512", height="768", outputFormat="jpeg")
    task = bfl_service.wait(answer["taskid"])
    [output] = task["outputs"]
    assert (output["name"], output["contenttype"]) == ("0.jpeg", "image/jpeg")
    assert image_of(bfl_service, output).format == "JPEG"


def test_moderated_task_ends_with_an_actionable_debugerror(bfl_service: Service, fake_bfl: FakeBfl) -> None:
    reset(fake_bfl, final_status="Request Moderated")
    answer = bfl_service.run(ULTRA, prompt="something flagged")
    task = bfl_service.wait(answer["taskid"])
    assert task["status"] == "task_postprocess_end" and task["pexit"] != "0"
    assert task["outputs"] == []
    assert "moderation rejected the request" in task["debugerror"]


def test_width_not_a_multiple_of_16_is_refused_before_anything_is_sent(
    bfl_service: Service, fake_bfl: FakeBfl
) -> None:
    reset(fake_bfl)
    response = bfl_service.post(f"/v1/Run/{FLUX2}", json={"prompt": "x", "width": 1000})
    body = response.json()
    assert body["result"] is False
    assert any(
        e["message"].startswith("Request parameter [width] ") and "multiple of 16" in e["message"]
        for e in body["errors"]
    )
    assert fake_bfl.requests == []


def test_kill_while_polling_ends_the_task_cancelled(bfl_service: Service, fake_bfl: FakeBfl) -> None:
    reset(fake_bfl, pending_polls=10_000)
    taskid = bfl_service.run(FLUX2, prompt="slow one")["taskid"]
    deadline = time.monotonic() + 30
    while not fake_bfl.of("poll") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_bfl.of("poll"), "the worker never polled BFL"
    killed = bfl_service.post("/v1/Task/Kill", json={"taskid": taskid}).json()
    assert killed["result"] is True, killed
    task = bfl_service.wait(taskid)
    assert task["status"] == "task_cancel" and task["outputs"] == []
    polls = len(fake_bfl.of("poll"))
    time.sleep(1.5)  # longer than the poll interval: no further polls after the kill
    assert len(fake_bfl.of("poll")) == polls


def test_the_key_is_in_no_task_field_and_no_server_log(bfl_service: Service, fake_bfl: FakeBfl) -> None:
    reset(fake_bfl, final_status="Error")
    taskid = bfl_service.run(ULTRA, prompt="fails")["taskid"]
    task = bfl_service.wait(taskid)
    assert "BFL reported an error" in task["debugerror"]
    assert fake_bfl.api_key not in json.dumps(task)
    assert fake_bfl.api_key not in bfl_service.log()


# --- without a key ---------------------------------------------------------------------------------


def test_unconfigured_partner_tool_answers_run_with_how_to_configure(make_service, fake_bfl: FakeBfl) -> None:
    service = make_service(BFL_API_KEY="", FLUXSERVE_WORKERS="0")
    answer = run_seed_curl(service, FLUX2)
    assert answer["result"] is False
    message = " ".join(e["message"] for e in answer["errors"])
    assert "BFL_API_KEY" in message and "FLUXSERVE_BACKEND_FLUX_2_PRO_T2I=local" in message


def test_flux2_seed_curl_runs_locally_on_tiny_flux2(local_service: Service) -> None:
    answer = run_seed_curl(local_service, FLUX2)
    task = local_service.wait(answer["taskid"], timeout=300)
    assert (task["status"], task["pexit"]) == ("task_postprocess_end", "0"), task["debugerror"]
    assert (
        "ran locally on tiny test weights of black-forest-labs/FLUX.2-dev instead of flux-2-pro"
        in (task["debugoutput"])
    )
    [output] = task["outputs"]
    assert output["name"] == "0.png"
    assert image_of(local_service, output).size == (1024, 1024)


def test_ultra_seed_curl_runs_locally_on_tiny_flux1(local_service: Service) -> None:
    answer = run_seed_curl(local_service, ULTRA)
    task = local_service.wait(answer["taskid"], timeout=300)
    assert (task["status"], task["pexit"]) == ("task_postprocess_end", "0"), task["debugerror"]
    assert "instead of flux-pro-1.1-ultra" in task["debugoutput"] and "16:9" in task["debugoutput"]
    image = image_of(local_service, task["outputs"][0])
    assert abs(image.width / image.height - 16 / 9) < 0.1
