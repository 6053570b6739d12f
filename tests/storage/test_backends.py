"""Both storage backends behave alike: the local folder and a real S3-compatible server (moto's
standalone server on 127.0.0.1, reached over HTTP by boto3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxserve.storage import Storage, open_storage
from fluxserve.storage.local import LocalStorage
from tests.support.s3 import CREDENTIALS, S3Server


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
    if request.param == "local":
        return open_storage("", tmp_path / "files")
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return open_storage(f"s3://{server.new_bucket()}/some/prefix", tmp_path, server.endpoint_url)


def test_put_then_fetch_open_and_exists(storage: Storage, tmp_path: Path) -> None:
    storage.put("outputs/abc/0.png", b"image bytes")
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 5000)
    storage.put_file("loras/big.safetensors", source)

    assert storage.exists("outputs/abc/0.png") and storage.exists("loras/big.safetensors")
    assert not storage.exists("outputs/abc/1.png")
    assert storage.fetch("outputs/abc/0.png", tmp_path / "scratch").read_bytes() == b"image bytes"
    stored = storage.open("loras/big.safetensors")
    assert stored is not None and stored.size == 256 * 5000
    body = stored.path.read_bytes() if stored.path else b"".join(stored.chunks)
    assert body == source.read_bytes()


def test_missing_objects(storage: Storage, tmp_path: Path) -> None:
    assert storage.open("uploads/none/x.jpg") is None
    with pytest.raises(FileNotFoundError):
        storage.fetch("uploads/none/x.jpg", tmp_path / "scratch")


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "a/./b", ""])
def test_keys_that_could_escape_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="storage key"):
        storage.put(key, b"x")


def test_s3_keys_live_under_the_prefix(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.new_bucket()
    storage = open_storage(f"s3://{bucket}/cluster-a/", tmp_path, s3_server.endpoint_url)
    storage.put("outputs/t/0.png", b"x")
    assert s3_server.keys(bucket) == ["cluster-a/outputs/t/0.png"]
    assert storage.describe() == f"s3://{bucket}/cluster-a/ at {s3_server.endpoint_url}"


def test_the_default_is_the_local_folder_and_odd_urls_are_refused(tmp_path: Path) -> None:
    assert isinstance(open_storage("", tmp_path / "files"), LocalStorage)
    with pytest.raises(ValueError, match=r"FLUXSERVE_STORAGE_URL.*s3://bucket/prefix"):
        open_storage("gs://bucket", tmp_path)
    with pytest.raises(ValueError, match="names no bucket"):
        open_storage("s3://", tmp_path)
