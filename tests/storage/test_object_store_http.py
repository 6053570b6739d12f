"""A server whose files live in an S3-compatible store: uploads, a worker reading them, outputs,
and downloads through the API (streamed from the store), with nothing under the data folder."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support.files import image_bytes
from tests.support.live import run_krea
from tests.support.s3 import S3Server
from tests.support.service import Service

KONTEXT = "wiro/flux_kontext_dev_with_2_image"


def test_uploads_and_outputs_go_through_the_object_store(
    make_service: Callable[..., Service], s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    service = make_service(**s3_server.env(bucket, prefix="site"))
    room, dog = image_bytes((64, 64), (200, 120, 40)), image_bytes((64, 64), (40, 90, 200))

    uploaded = service.post("/v1/File/Upload", files=[("file", ("room.jpg", room, "image/jpeg"))]).json()
    assert uploaded["result"] is True, uploaded
    download = httpx.get(uploaded["list"][0]["url"])
    assert download.status_code == 200 and download.content == room
    assert download.headers["content-type"] == "image/jpeg"

    edit = service.post(
        f"/v1/Run/{KONTEXT}",
        data={"prompt": "a dog on a couch", "steps": "2", "seed": "0"},
        files={
            "inputImage": ("room2.jpg", room, "image/jpeg"),
            "inputImage2": ("dog.jpg", dog, "image/jpeg"),
        },
    ).json()
    text = run_krea(service, steps=2)
    for taskid in (edit["taskid"], text["taskid"]):
        task = service.wait(taskid, timeout=300)
        assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", task["debugerror"]
        output = task["outputs"][0]
        body = httpx.get(output["url"])
        assert body.status_code == 200 and body.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(body.content) == int(output["size"]) == int(body.headers["content-length"])
        stored = s3_server.client().get_object(Bucket=bucket, Key=f"site/outputs/{task['uuid']}/0.png")
        assert stored["Body"].read() == body.content

    keys = s3_server.keys(bucket)
    assert sum(key.startswith("site/uploads/") for key in keys) == 3  # File/Upload + two file parts
    assert not (service.data_dir / "files").exists()  # nothing written to the local folder


def test_a_file_missing_from_the_store_is_a_clear_404(
    make_service: Callable[..., Service], s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    service = make_service(**s3_server.env(bucket), FLUXSERVE_WORKERS="0")
    uploaded = service.post("/v1/File/Upload", files=[("file", ("a.txt", b"hello", "text/plain"))]).json()
    s3_server.client().delete_object(
        Bucket=bucket, Key=f"files/uploads/{uploaded['list'][0]['accesskey']}/a.txt"
    )
    answer = httpx.get(uploaded["list"][0]["url"])
    assert answer.status_code == 404 and answer.json()["errors"][0]["message"] == "File is no longer stored."
