"""Private-URL LoRAs shared through the object store: downloaded by one worker, reused by another
(separate data folders, one real S3-compatible server on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from safetensors.torch import save_file
from tests.support.counting_files import counting_file_server
from tests.support.s3 import CREDENTIALS, S3Server

from fluxserve.engines.base import EngineConfig
from fluxserve.engines.lora_files import PrivateLoraCache
from fluxserve.engines.tiny import tiny_lora_state_dict


def _config(tmp_path: Path, name: str, server: S3Server, bucket: str) -> EngineConfig:
    return EngineConfig(
        data_dir=tmp_path / name,
        allow_private_urls=True,
        storage_url=f"s3://{bucket}/shared",
        s3_endpoint_url=server.endpoint_url,
    )


def test_a_lora_downloaded_by_one_worker_is_reused_by_another(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.new_bucket()
    save_file(tiny_lora_state_dict(seed=7), str(tmp_path / "lora.safetensors"))
    with counting_file_server() as files:
        files.files["/mine.safetensors"] = (tmp_path / "lora.safetensors").read_bytes()
        url = f"{files.base_url}/mine.safetensors?signature=secret"
        first_path, first_digest = PrivateLoraCache(_config(tmp_path, "a", s3_server, bucket)).get(url)
        second = PrivateLoraCache(_config(tmp_path, "b", s3_server, bucket))
        second_path, second_digest = second.get(url)
        assert second.get(url) == (second_path, second_digest)  # then from its own folder
        assert files.hits == {"/mine.safetensors?signature=secret": 1}
    assert first_digest == second_digest
    assert second_path.parent == tmp_path / "b" / "loras"
    assert second_path.read_bytes() == first_path.read_bytes()
    keys = s3_server.keys(bucket)
    assert f"shared/loras/{first_digest}.safetensors" in keys
    assert not any("secret" in key or "mine" in key for key in keys)  # the URL itself is never stored


def test_a_damaged_shared_copy_is_not_used(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.new_bucket()
    save_file(tiny_lora_state_dict(seed=8), str(tmp_path / "lora.safetensors"))
    with counting_file_server() as files:
        files.files["/x.safetensors"] = (tmp_path / "lora.safetensors").read_bytes()
        url = f"{files.base_url}/x.safetensors"
        _, digest = PrivateLoraCache(_config(tmp_path, "a", s3_server, bucket)).get(url)
        s3_server.client().put_object(Bucket=bucket, Key=f"shared/loras/{digest}.safetensors", Body=b"junk")
        path, again = PrivateLoraCache(_config(tmp_path, "b", s3_server, bucket)).get(url)
        assert files.hits["/x.safetensors"] == 2 and again == digest
        assert path.read_bytes() == files.files["/x.safetensors"]


def test_without_an_object_store_nothing_is_shared(tmp_path: Path) -> None:
    config = EngineConfig(data_dir=tmp_path)
    assert PrivateLoraCache(config).shared is None
    assert PrivateLoraCache(dataclasses.replace(config, storage_url="")).shared is None
