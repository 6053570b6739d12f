"""A pickle disguised as a LoRA (``.safetensors`` or ``.bin``) is never unpickled.

Its ``__reduce__`` would create a marker file; the payload is shown to be live first (unpickling a
copy creates its marker), then handed to every path a LoRA file can take: a local file, and a
``selectedLoraModelPrivateUrl`` download through the real engine on the tiny weights.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest
from tests.support.files import static_server

from fluxserve.engines.base import EngineConfig, EngineJob
from fluxserve.engines.lora_files import load_checked_lora
from fluxserve.engines.registry import EngineRegistry
from fluxserve.errors import TaskFailure


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # unpickling creates the marker file


def _evil(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker), protocol=2)


def test_the_payload_is_live(tmp_path: Path) -> None:
    control = tmp_path / "control-marker"
    pickle.loads(_evil(control))
    assert control.exists()


@pytest.mark.parametrize(
    "name", ["lora.safetensors", "pytorch_lora_weights.bin", "adapter_model.safetensors"]
)
def test_a_local_pickle_lora_is_refused_unread(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / name
    path.write_bytes(_evil(marker))
    with pytest.raises(TaskFailure, match=r"not a \.safetensors file"):
        load_checked_lora(path, transformer=None, what="selectedLoraModel")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["evil.safetensors", "evil.bin"])
def test_a_downloaded_pickle_lora_never_runs(tiny_config: EngineConfig, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "marker"
    served = tmp_path / "served"
    served.mkdir()
    (served / name).write_bytes(_evil(marker))
    config = replace(tiny_config, allow_private_urls=True)  # the file server is on loopback
    engine = EngineRegistry(config).get("flux1-dev-lora")
    with static_server(served) as base_url:
        job = EngineJob(
            task_id="t",
            tool="wiro/text-to-image-flux-lora-fast",
            params={
                "prompt": "p",
                "steps": 2,
                "scale": 3.5,
                "samples": 1,
                "seed": 1,
                "width": 64,
                "height": 64,
                "selectedLoraModel": [],
                "selectedLoraModelPrivate": "",
                "selectedLoraModelPrivateUrl": f"{base_url}/{name}",
            },
        )
        with pytest.raises(TaskFailure) as failure:
            engine.run(job, lambda step, total: None)
    assert str(failure.value).startswith("selectedLoraModelPrivateUrl")
    assert "not a .safetensors file" in str(failure.value)
    assert not marker.exists()
    assert list((config.data_dir / "loras").glob("*.safetensors")) == []  # nothing kept
