"""Where weights come from, and the errors a user sees when they cannot be had."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fluxserve.engines.base import EngineConfig
from fluxserve.engines.home import ModelHome
from fluxserve.engines.weights import FLUX_DEV, KONTEXT_DEV, pull_weights, resolve_source, tools_repos
from fluxserve.errors import WeightsUnavailableError


def _assert_explains_how_to_provide(message: str) -> None:
    for hint in ("HF_TOKEN", "fluxserve pull", "FLUXSERVE_WEIGHTS=/folder", "licence"):
        assert hint in message, f"{hint!r} missing from: {message}"
    assert "Traceback" not in message


def test_missing_folder_says_how_to_provide_weights(tmp_path: Path) -> None:
    config = EngineConfig(data_dir=tmp_path, weights=str(tmp_path / "nowhere"), device="cpu")
    with pytest.raises(WeightsUnavailableError) as caught:
        resolve_source(config)
    assert str(tmp_path / "nowhere") in str(caught.value)
    _assert_explains_how_to_provide(str(caught.value))


def test_folder_without_the_model_fails_at_load_with_instructions(tmp_path: Path) -> None:
    (tmp_path / "weights-folder").mkdir()
    config = EngineConfig(data_dir=tmp_path, weights=str(tmp_path / "weights-folder"), device="cpu")
    with pytest.raises(WeightsUnavailableError) as caught, ModelHome(config).use(FLUX_DEV):
        pass
    assert FLUX_DEV in str(caught.value)
    _assert_explains_how_to_provide(str(caught.value))


def test_hub_without_network_or_cache_fails_with_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = EngineConfig(data_dir=tmp_path, weights="hub", device="cpu")
    with pytest.raises(WeightsUnavailableError) as caught, ModelHome(config).use(FLUX_DEV):
        pass
    assert "Hugging Face Hub" in str(caught.value)
    _assert_explains_how_to_provide(str(caught.value))


def test_tiny_is_built_in_the_data_dir_on_first_use(tmp_path: Path) -> None:
    config = EngineConfig(data_dir=tmp_path, weights="tiny", device="cpu")
    source = resolve_source(config)
    assert source.root == tmp_path / "weights" / "tiny"
    assert (source.root / FLUX_DEV / "model_index.json").is_file()


def test_folder_may_hold_shared_components_in_one_repo_only(tiny_weights_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "real-like"
    shutil.copytree(tiny_weights_dir / FLUX_DEV, folder / FLUX_DEV)
    shutil.copytree(tiny_weights_dir / KONTEXT_DEV / "transformer", folder / KONTEXT_DEV / "transformer")
    config = EngineConfig(data_dir=tmp_path, weights=str(folder), device="cpu")
    with ModelHome(config).use(KONTEXT_DEV) as pipeline:
        assert type(pipeline).__name__ == "FluxKontextPipeline"


def test_pull_with_a_local_folder_downloads_nothing(tiny_weights_dir: Path, tmp_path: Path) -> None:
    config = EngineConfig(data_dir=tmp_path, weights=str(tiny_weights_dir), device="cpu")
    paths = pull_weights(config, ["black-forest-labs/FLUX.1-Krea-dev"])
    assert paths == [tiny_weights_dir / "black-forest-labs/FLUX.1-Krea-dev"]


def test_tools_repos_maps_tools_and_rejects_unknown() -> None:
    assert tools_repos(["wiro/flux_kontext_dev_with_2_image"]) == [KONTEXT_DEV]
    assert len(tools_repos(None)) == 3
    with pytest.raises(ValueError, match="known tools"):
        tools_repos(["black-forest-labs/flux-2-pro-t2i"])


def test_pull_from_an_unreachable_hub_explains_instead_of_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = EngineConfig(data_dir=tmp_path, weights="hub", device="cpu")
    with pytest.raises(WeightsUnavailableError) as caught:
        pull_weights(config, ["black-forest-labs/FLUX.1-Krea-dev"])
    assert "black-forest-labs/FLUX.1-Krea-dev" in str(caught.value)
    _assert_explains_how_to_provide(str(caught.value))


def test_pull_with_tiny_builds_the_tiny_weights_and_loras(tmp_path: Path) -> None:
    config = EngineConfig(data_dir=tmp_path, weights="tiny", device="cpu")
    paths = pull_weights(config, ["wiro/text-to-image-flux-lora-fast"])
    assert paths == [tmp_path / "weights" / "tiny" / FLUX_DEV]
    assert (tmp_path / "weights" / "tiny" / "ChronoKnight" / "WPAP-ART-Style" / "lora.safetensors").is_file()
