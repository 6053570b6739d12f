"""The FLUX.1-Krea-dev engine on tiny weights: determinism, samples, sizes, kill, missing weights."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from fluxserve.engines.base import EngineConfig, EngineJob
from fluxserve.engines.flux_text import FluxTextEngine
from fluxserve.engines.registry import EngineRegistry
from fluxserve.errors import TaskKilled, WeightsUnavailableError

TOOL = "black-forest-labs/FLUX.1-Krea-dev"


def _job(**overrides) -> EngineJob:
    params = {
        "prompt": "a cat photo",
        "steps": 3,
        "scale": 4.5,
        "samples": 1,
        "seed": 42,
        "width": 64,
        "height": 64,
    }
    params.update(overrides)
    return EngineJob(task_id="t1", tool=TOOL, params=params)


def _engine(config: EngineConfig):
    return EngineRegistry(config).get("flux1-krea-dev")


def _no_kill(step: int, total: int) -> None:
    pass


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_registry_builds_the_krea_engine(tiny_config: EngineConfig) -> None:
    engine = _engine(tiny_config)
    assert isinstance(engine, FluxTextEngine)
    assert engine.repo == TOOL


def test_same_inputs_and_seed_give_identical_png_bytes(tiny_config: EngineConfig) -> None:
    first = _engine(tiny_config).run(_job(), _no_kill).images[0]
    again = _engine(tiny_config).run(_job(), _no_kill).images[0]  # a fresh home, same bytes
    assert first.data == again.data
    assert first.content_type == "image/png" and first.data.startswith(b"\x89PNG")
    other_seed = _engine(tiny_config).run(_job(seed=43), _no_kill).images[0]
    assert other_seed.data != first.data


def test_samples_give_distinct_images_each_reproducible_from_seed_plus_i(tiny_config: EngineConfig) -> None:
    engine = _engine(tiny_config)
    calls: list[tuple[int, int]] = []
    result = engine.run(_job(samples=2, seed=7), lambda step, total: calls.append((step, total)))
    assert len(result.images) == 2
    assert result.images[0].data != result.images[1].data
    assert calls == [(step, 6) for step in range(1, 7)]  # progress over both images
    assert "7, 8" in result.debugoutput
    alone = engine.run(_job(samples=1, seed=8), _no_kill).images[0]
    assert alone.data == result.images[1].data


def test_width_and_height_are_honoured(tiny_config: EngineConfig) -> None:
    engine = _engine(tiny_config)
    assert _size(engine.run(_job(width=128, height=64), _no_kill).images[0].data) == (128, 64)
    assert _size(engine.run(_job(width=64, height=96), _no_kill).images[0].data) == (64, 96)


def test_prompt_and_guidance_change_the_image(tiny_config: EngineConfig) -> None:
    engine = _engine(tiny_config)
    base = engine.run(_job(), _no_kill).images[0].data
    assert engine.run(_job(prompt="a dog"), _no_kill).images[0].data != base
    assert engine.run(_job(scale=1.0), _no_kill).images[0].data != base


def test_kill_propagates_at_the_step_it_was_raised(tiny_config: EngineConfig, monkeypatch) -> None:
    engine = _engine(tiny_config)
    seen: list[int] = []
    decoded: list[int] = []
    with engine.home.use(engine.repo) as pipe:
        original_decode = pipe.vae.decode
        monkeypatch.setattr(pipe.vae, "decode", lambda *a, **k: decoded.append(1) or original_decode(*a, **k))

    def progress(step: int, total: int) -> None:
        seen.append(step)
        if step == 2:
            raise TaskKilled("killed")

    with pytest.raises(TaskKilled):
        engine.run(_job(steps=4, samples=2), progress)
    assert seen == [1, 2]  # stopped right there: no more steps
    assert decoded == []  # and no VAE decode of the half-denoised latents
    # The pipeline is usable afterwards and not left in a half state.
    after = engine.run(_job(), _no_kill).images[0].data
    assert after == _engine(tiny_config).run(_job(), _no_kill).images[0].data


def test_missing_weights_fail_the_task_with_instructions(tmp_path: Path) -> None:
    config = EngineConfig(data_dir=tmp_path, weights=str(tmp_path / "no-such-folder"), device="cpu")
    with pytest.raises(WeightsUnavailableError) as caught:
        _engine(config).run(_job(), _no_kill)
    message = str(caught.value)
    assert "FLUXSERVE_WEIGHTS" in message and "HF_TOKEN" in message and "fluxserve pull" in message
