"""Projects over HTTP: keys made by `fluxserve project`, isolation, rotation, limits, IP allow-lists."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.files import image_bytes
from tests.support.service import LOOPBACK_TLS, Service, signed_headers

KREA = "black-forest-labs/FLUX.1-Krea-dev"
KONTEXT = "wiro/flux_kontext_dev_with_2_image"
SMALL = {"prompt": "p", "steps": "2", "width": "64", "height": "64"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_weights_dir: Path) -> Iterator[Service]:
    """No worker (tasks stay queued), a queue cap and a pixel cap low enough to reach."""
    env = {
        "FLUXSERVE_WORKERS": "0",
        "FLUXSERVE_MAX_QUEUED_TASKS": "40",
        "FLUXSERVE_MAX_TASK_PIXELS": "300000",
    }
    service = Service(tmp_path_factory.mktemp("projects"), weights=str(tiny_weights_dir), env_overrides=env)
    service.start()
    yield service
    service.stop()


def project_cli(server: Service, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fluxserve.cli", "project", *args],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def create_project(server: Service, name: str, *options: str) -> dict:
    result = project_cli(server, "create", name, *options, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def call(server: Service, project: dict, path: str, **kwargs) -> httpx.Response:
    headers = signed_headers(project["api_key"], project["api_secret"]) if project["api_secret"] else {}
    headers = {"x-api-key": project["api_key"], **headers, **kwargs.pop("headers", {})}
    return httpx.post(f"{server.base_url}{path}", headers=headers, timeout=30, verify=LOOPBACK_TLS, **kwargs)


def assert_no_task(response: httpx.Response) -> None:
    assert response.status_code == 200
    body = response.json()
    assert body["result"] is False and body["errors"][0]["code"] == 1
    assert body["errors"][0]["message"].startswith("There is no task yet.")


def test_a_project_sees_and_acts_on_only_its_own_tasks(server: Service) -> None:
    mine = server.run(KREA, **SMALL)
    other = create_project(server, "other")
    for path, fields in [
        ("/v1/Task/Detail", {"taskid": mine["taskid"]}),
        ("/v1/Task/Detail", {"tasktoken": mine["socketaccesstoken"]}),
        ("/v1/Task/Cancel", {"taskid": mine["taskid"]}),
        ("/v1/Task/Cancel", {"socketaccesstoken": mine["socketaccesstoken"]}),
        ("/v1/Task/Kill", {"taskid": mine["taskid"]}),
        ("/v1/Task/Kill", {"socketaccesstoken": mine["socketaccesstoken"]}),
    ]:
        assert_no_task(call(server, other, path, json=fields))
    listed = call(server, other, "/v1/Task/List", json={}).json()
    assert listed["result"] is True and listed["total"] == "0"
    assert server.detail(mine["taskid"])["status"] == "task_queue"  # untouched by the other project


def test_an_uploaded_file_name_belongs_to_its_project(server: Service) -> None:
    owner = create_project(server, "uploader")
    room = image_bytes((64, 64), (200, 30, 30))
    uploaded = call(server, owner, "/v1/File/Upload", files={"file": ("secret-room.jpg", room, "image/jpeg")})
    assert uploaded.json()["result"] is True
    response = server.post(
        f"/v1/Run/{KONTEXT}",
        json={"prompt": "p", "inputImageUrl": "secret-room.jpg", "inputImage2Url": "secret-room.jpg"},
    )
    body = response.json()
    assert body["result"] is False
    assert (
        "inputImageUrl" in body["errors"][0]["message"]
        and "uploaded to this project" in body["errors"][0]["message"]
    )
    accepted = call(
        server,
        owner,
        f"/v1/Run/{KONTEXT}",
        json={
            "prompt": "p",
            "steps": "2",
            "inputImageUrl": "secret-room.jpg",
            "inputImage2Url": "secret-room.jpg",
        },
    ).json()
    assert accepted["result"] is True, accepted


def test_rotation_and_deletion_take_effect_with_the_next_request(server: Service) -> None:
    old = create_project(server, "rotating")
    assert call(server, old, "/v1/Task/List", json={}).json()["result"] is True
    rotated = project_cli(server, "rotate", "rotating", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    refused = call(server, old, "/v1/Task/List", json={})
    assert refused.status_code == 401 and "Project authorization is not founded." in refused.text
    assert call(server, new, "/v1/Task/List", json={}).json()["result"] is True
    assert project_cli(server, "delete", "rotating").returncode == 0
    assert call(server, new, "/v1/Task/List", json={}).status_code == 401


def test_a_key_only_project_needs_no_signature(server: Service) -> None:
    project = create_project(server, "keyonly", "--key-only")
    assert project["api_secret"] == ""
    response = httpx.post(
        f"{server.base_url}/v1/Task/List", headers={"x-api-key": project["api_key"]}, json={}, timeout=30
    )
    assert response.json()["result"] is True


def test_over_the_concurrency_limit_run_answers_code_96_and_creates_nothing(server: Service) -> None:
    project = create_project(server, "limited", "--max-concurrent", "2")
    for _ in range(2):
        assert call(server, project, f"/v1/Run/{KREA}", json=SMALL).json()["result"] is True
    response = call(server, project, f"/v1/Run/{KREA}", json=SMALL)
    assert response.status_code == 200
    body = response.json()
    assert body["result"] is False and "taskid" not in body
    assert body["errors"] == [
        {
            "code": 96,
            "message": "You have reached your concurrent task limit. This project can run up to 2 tasks "
            "at the same time. Wait for a running task to finish.",
        }
    ]
    assert call(server, project, "/v1/Task/List", json={}).json()["total"] == "2"
    first = call(server, project, "/v1/Task/List", json={}).json()["tasklist"][0]
    assert call(server, project, "/v1/Task/Cancel", json={"taskid": first["id"]}).json()["result"] is True
    assert call(server, project, f"/v1/Run/{KREA}", json=SMALL).json()["result"] is True  # a slot is free


def test_an_address_outside_the_allow_list_gets_401_in_wiros_words(server: Service) -> None:
    project = create_project(server, "office", "--allow-ip", "10.0.0.0/8")
    response = call(server, project, "/v1/Task/List", json={})
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "Requested ip 127.0.0.1 is not allowed."
    # Behind a trusted proxy (uvicorn trusts X-Forwarded-For from 127.0.0.1 by default) the client's
    # address is the forwarded one.
    forwarded = call(server, project, "/v1/Task/List", json={}, headers={"X-Forwarded-For": "10.20.30.40"})
    assert forwarded.json()["result"] is True
    assert project_cli(server, "update", "office", "--allow-ip", "127.0.0.1").returncode == 0
    assert call(server, project, "/v1/Task/List", json={}).json()["result"] is True


def test_the_pixel_cap_names_the_fields(server: Service) -> None:
    response = server.post(f"/v1/Run/{KREA}", json={**SMALL, "width": "512", "height": "512", "samples": "2"})
    body = response.json()
    assert body["result"] is False
    message = body["errors"][0]["message"]
    assert message.startswith(
        "Request parameter [width] width x height x samples = 512 x 512 x 2 = 524288 pixels"
    )
    assert "300000" in message and "FLUXSERVE_MAX_TASK_PIXELS" in message


def test_project_show_prints_the_signing_secret_but_never_the_api_secret(server: Service) -> None:
    created = create_project(server, "shown")
    shown = project_cli(server, "show", "shown")
    assert shown.returncode == 0
    assert created["webhook_secret"] in shown.stdout and created["api_key"] in shown.stdout
    assert created["api_secret"] not in shown.stdout
    listed = project_cli(server, "list", "--json")
    names = [row["name"] for row in json.loads(listed.stdout)]
    assert "shown" in names and "default" in names  # the settings' project is listed too
    assert project_cli(server, "rotate", "default").returncode == 1


def test_on_postgresql_a_change_made_on_another_machine_takes_effect_at_once(
    make_service, postgres, tmp_path: Path
) -> None:
    """The API caches keys for an hour here, and `fluxserve project` runs with another data folder
    (another machine: the local marker file cannot help), so only the store's NOTIFY can explain
    an old key refused right after the rotation."""
    database = postgres.new_database()
    api = make_service(
        FLUXSERVE_WORKERS="0", FLUXSERVE_DATABASE_URL=database, FLUXSERVE_PROJECT_CACHE_SECONDS="3600"
    )
    elsewhere = Service(tmp_path / "other-box", weights=api.weights, env_overrides=api.env_overrides)
    old = create_project(elsewhere, "roaming")
    assert call(api, old, "/v1/Task/List", json={}).json()["result"] is True  # now cached
    assert project_cli(elsewhere, "rotate", "roaming", "--json").returncode == 0
    deadline = time.monotonic() + 5  # a NOTIFY takes milliseconds; the cache would hold for an hour
    while (refused := call(api, old, "/v1/Task/List", json={})).status_code != 401:
        assert time.monotonic() < deadline, refused.text
        time.sleep(0.05)
    assert not (api.data_dir / "projects.changed").exists()  # this box's marker played no part
