"""wiro/flux_kontext_dev_with_2_image over HTTP: the seed's request, file parts, URLs, failures."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from tests.support.files import image_bytes, static_server
from tests.support.seeds import run_seed_curl
from tests.support.service import Service

KONTEXT = "wiro/flux_kontext_dev_with_2_image"
FAST = {"prompt": "put the dog on the couch", "steps": "2", "scale": "2.5", "seed": "0"}


def _output_image(task: dict) -> Image.Image:
    assert task["status"] == "task_postprocess_end", task["debugerror"]
    return Image.open(io.BytesIO(httpx.get(task["outputs"][0]["url"]).content))


def test_the_seed_request_runs_with_files_uploaded_earlier(service: Service) -> None:
    room, dog = image_bytes((96, 64), (200, 120, 40)), image_bytes((64, 64), (40, 90, 200))
    upload = service.post(
        "/v1/File/Upload",
        files=[
            ("file", ("flux_kontext_room.jpg", room, "image/jpeg")),
            ("file2", ("flux_kontext_dog.jpg", dog, "image/jpeg")),
        ],
    ).json()
    assert upload["result"] is True and [item["name"] for item in upload["list"]] == [
        "flux_kontext_room.jpg",
        "flux_kontext_dog.jpg",
    ]
    assert httpx.get(upload["list"][0]["url"]).content == room
    answer = run_seed_curl(service, KONTEXT)
    assert answer["result"] is True, answer
    task = service.wait(answer["taskid"], timeout=300)
    assert _output_image(task).size == (96, 64)  # follows the first image
    assert task["parameters"]["inputImageUrl"] == upload["list"][0]["url"]
    assert task["parameters"]["inputImage2Url"] == upload["list"][1]["url"]


def test_file_parts_and_urls_give_the_same_image_and_both_images_matter(service: Service, tmp_path) -> None:
    room, dog, cat = (
        image_bytes((80, 64), (200, 120, 40)),
        image_bytes((64, 64), (40, 90, 200)),
        image_bytes((64, 64), (10, 200, 10)),
    )
    (tmp_path / "room.jpg").write_bytes(room)
    (tmp_path / "dog.jpg").write_bytes(dog)
    uploaded = service.post(
        f"/v1/Run/{KONTEXT}",
        data=FAST,
        files={"inputImage": ("room.jpg", room, "image/jpeg"), "inputImage2": ("dog.jpg", dog, "image/jpeg")},
    ).json()
    with static_server(tmp_path) as base:
        by_url = service.run(
            KONTEXT, **FAST, inputImageUrl=f"{base}/room.jpg", inputImage2Url=f"{base}/dog.jpg"
        )
        first = service.wait(uploaded["taskid"])
        second = service.wait(by_url["taskid"])
    other = service.post(
        f"/v1/Run/{KONTEXT}",
        data=FAST,
        files={"inputImage": ("room.jpg", room, "image/jpeg"), "inputImage2": ("cat.jpg", cat, "image/jpeg")},
    ).json()
    third = service.wait(other["taskid"])
    images = [httpx.get(task["outputs"][0]["url"]).content for task in (first, second, third)]
    assert images[0] == images[1]
    assert images[0] != images[2]  # the second image changes the result
    assert first["parameters"]["inputImageUrl"].startswith(f"{service.base_url}/v1/File/")


def test_a_missing_image_is_refused_at_run_time(service: Service) -> None:
    response = service.post(f"/v1/Run/{KONTEXT}", json={**FAST, "inputImageUrl": "https://example.com/a.png"})
    assert response.status_code == 200
    assert response.json()["errors"] == [{"code": 0, "message": "Request files [inputImage2] required"}]


def test_an_unknown_file_name_is_refused_at_run_time(service: Service) -> None:
    response = service.post(
        f"/v1/Run/{KONTEXT}", json={**FAST, "inputImageUrl": "nope.jpg", "inputImage2Url": "nope2.jpg"}
    )
    assert response.status_code == 200 and response.json()["result"] is False
    assert "nope.jpg" in response.json()["errors"][0]["message"]


def test_a_url_that_is_not_an_image_fails_the_task_naming_the_input(service: Service, tmp_path) -> None:
    (tmp_path / "page.html").write_text("<html>hello</html>")
    (tmp_path / "dog.jpg").write_bytes(image_bytes((64, 64), (40, 90, 200)))
    with static_server(tmp_path) as base:
        answer = service.run(
            KONTEXT, **FAST, inputImageUrl=f"{base}/dog.jpg", inputImage2Url=f"{base}/page.html"
        )
        task = service.wait(answer["taskid"])
    assert task["status"] == "task_postprocess_end" and task["pexit"] != "0"
    assert task["debugerror"].startswith("inputImage2Url:") and "image" in task["debugerror"]


def test_a_loopback_url_is_refused_when_private_urls_are_not_allowed(
    strict_service: Service, tmp_path
) -> None:
    (tmp_path / "dog.jpg").write_bytes(image_bytes((64, 64), (40, 90, 200)))
    with static_server(tmp_path) as base:
        answer = strict_service.run(
            KONTEXT, **FAST, inputImageUrl=f"{base}/dog.jpg", inputImage2Url=f"{base}/dog.jpg"
        )
        task = strict_service.wait(answer["taskid"])
    assert task["pexit"] != "0" and task["debugerror"].startswith("inputImageUrl:")
    assert "127.0.0.1" in task["debugerror"] or "private" in task["debugerror"]


def test_this_servers_own_file_urls_feed_the_next_task_without_a_fetch(strict_service: Service) -> None:
    """An output URL of an earlier task (and an upload's URL) point at this server on 127.0.0.1,
    which the strict default refuses to fetch; they are read from storage instead, so an output
    can be edited next and the playground's "run again" of a history task works."""
    made = strict_service.run(
        "black-forest-labs/FLUX.1-Krea-dev", prompt="a dog", steps="2", width="64", height="64"
    )
    output_url = strict_service.wait(made["taskid"])["outputs"][0]["url"]
    assert output_url.startswith("http://127.0.0.1:")
    uploaded = strict_service.post(
        "/v1/File/Upload", files={"file": ("couch.png", image_bytes((48, 32), (200, 60, 30)), "image/png")}
    ).json()["list"][0]["url"]
    answer = strict_service.run(KONTEXT, **FAST, inputImageUrl=output_url, inputImage2Url=uploaded)
    task = strict_service.wait(answer["taskid"])
    assert (task["pexit"], task["debugerror"]) == ("0", ""), task["debugerror"]
    assert task["parameters"]["inputImageUrl"] == output_url  # echoed as sent
    width, height = Image.open(io.BytesIO(httpx.get(task["outputs"][0]["url"]).content)).size
    assert (width, height) == (64, 64)  # the output follows the first image: the earlier output
    forged = strict_service.run(
        KONTEXT, **FAST, inputImageUrl=output_url.replace("/v1/File/", "/v1/File/x"), inputImage2Url=uploaded
    )
    failed = strict_service.wait(forged["taskid"])  # not ours: fetched as a URL, and refused
    assert failed["pexit"] != "0" and failed["debugerror"].startswith("inputImageUrl:")
