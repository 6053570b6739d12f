"""The tiny offline weights: standard diffusers layout, deterministic, loadable, fast."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from fluxserve.engines import tiny
from fluxserve.engines.tiny import build_tiny_weights, is_tiny

REPOS = [
    "black-forest-labs/FLUX.1-Krea-dev",
    "black-forest-labs/FLUX.1-dev",
    "black-forest-labs/FLUX.1-Kontext-dev",
]
SUBFOLDERS = ["scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "transformer", "vae"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_is_a_diffusers_pipeline_folder_per_model(tiny_weights_dir: Path) -> None:
    for repo in REPOS:
        folder = tiny_weights_dir / repo
        index = json.loads((folder / "model_index.json").read_text())
        expected = "FluxKontextPipeline" if "Kontext" in repo else "FluxPipeline"
        assert index["_class_name"] == expected
        for sub in SUBFOLDERS:
            assert (folder / sub).is_dir(), f"{repo}/{sub} missing"
        assert is_tiny(folder)


def test_shared_components_identical_transformers_differ(tiny_weights_dir: Path) -> None:
    krea, dev, kontext = (tiny_weights_dir / repo for repo in REPOS)
    for sub, name in [
        ("vae", "diffusion_pytorch_model.safetensors"),
        ("text_encoder", "model.safetensors"),
        ("text_encoder_2", "model.safetensors"),
    ]:
        assert _digest(krea / sub / name) == _digest(dev / sub / name) == _digest(kontext / sub / name)
    transformer = "transformer/diffusion_pytorch_model.safetensors"
    digests = {_digest(folder / transformer) for folder in (krea, dev, kontext)}
    assert len(digests) == 3


def test_two_builds_give_identical_bytes(tiny_weights_dir: Path, tmp_path: Path) -> None:
    second = build_tiny_weights(tmp_path / "again")
    for repo in REPOS:
        for file in sorted((tiny_weights_dir / repo).rglob("*.safetensors")):
            twin = second / repo / file.relative_to(tiny_weights_dir / repo)
            assert _digest(file) == _digest(twin), file


def test_a_tiny_lora_for_every_catalog_entry_is_deterministic(tiny_weights_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from fluxserve.catalog.lora import load_lora_catalog

    second = build_tiny_weights(tmp_path / "again")
    digests = set()
    for entry in load_lora_catalog():
        path = tiny_weights_dir / entry.repo / entry.weight_name
        assert _digest(path) == _digest(second / entry.repo / entry.weight_name), entry.id
        state = load_file(str(path))
        assert any(key.endswith("attn.to_q.lora_A.weight") for key in state)
        assert all(key.startswith("transformer.") for key in state)
        assert all(tensor.abs().sum() > 0 for tensor in state.values())
        digests.add(_digest(path))
    assert len(digests) == len(load_lora_catalog())


def test_build_is_idempotent_and_leaves_no_temp_folders(tiny_weights_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in tiny_weights_dir.rglob("*.safetensors")}
    build_tiny_weights(tiny_weights_dir)
    after = {p: p.stat().st_mtime_ns for p in tiny_weights_dir.rglob("*.safetensors")}
    assert before == after
    assert not [p for p in tiny_weights_dir.rglob("*.tmp")]


def test_crashed_build_leaves_no_half_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(folder: Path, repo: str, seed: int, shared: dict) -> None:
        (folder / "model_index.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tiny, "_save_pipeline", boom)
    with pytest.raises(RuntimeError):
        build_tiny_weights(tmp_path)
    assert not (tmp_path / REPOS[0]).exists()
    assert list((tmp_path / "black-forest-labs").iterdir()) == []


def test_reloads_through_from_pretrained_and_generates(tiny_weights_dir: Path) -> None:
    from diffusers import FluxKontextPipeline, FluxPipeline

    pipe = FluxPipeline.from_pretrained(tiny_weights_dir / REPOS[1])
    assert pipe.vae_scale_factor == 8
    assert pipe.tokenizer.model_max_length == 77
    out = pipe(
        "a cat",
        num_inference_steps=2,
        width=128,
        height=64,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert out.shape == (1, 64, 128, 3)
    assert out.std() > 0.01  # not a flat image

    kontext = FluxKontextPipeline.from_pretrained(tiny_weights_dir / REPOS[2])
    image = torch.rand(1, 3, 64, 64)
    edited = kontext(
        image=image,
        prompt="a dog",
        num_inference_steps=2,
        width=64,
        height=64,
        _auto_resize=False,
        max_area=64 * 64,
        output_type="np",
    ).images
    assert edited.shape == (1, 64, 64, 3)
