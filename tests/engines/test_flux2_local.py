"""flux-2-pro-t2i's local backend: FLUX.2-dev through Flux2Pipeline, on tiny offline weights."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from fluxserve.engines.base import EngineConfig, EngineJob
from fluxserve.engines.flux2_local import Flux2LocalEngine
from fluxserve.engines.registry import EngineRegistry
from fluxserve.engines.tiny import TINY_MARKER
from fluxserve.errors import TaskKilled


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Flux2LocalEngine:
    data_dir = tmp_path_factory.mktemp("flux2-data")
    config = EngineConfig(
        data_dir=data_dir, weights="tiny", device="cpu", backends={"flux-2-pro-t2i": "local"}
    )
    built = EngineRegistry(config).get("bfl-flux-2-pro")  # through the registry, as the worker does
    assert isinstance(built, Flux2LocalEngine)
    return built


def job(**params) -> EngineJob:
    base = {
        "prompt": "a red fox",
        "width": 64,
        "height": 64,
        "safetyTolerance": 2,
        "seed": 7,
        "outputFormat": "png",
    }
    return EngineJob(task_id="t1", tool="black-forest-labs/flux-2-pro-t2i", params={**base, **params})


def steps_of(engine: Flux2LocalEngine, the_job: EngineJob) -> tuple[bytes, list[tuple[int, int]], str]:
    seen: list[tuple[int, int]] = []
    result = engine.run(the_job, lambda step, total: seen.append((step, total)))
    assert len(result.images) == 1
    return result.images[0].data, seen, result.debugoutput


def test_tiny_weights_are_a_diffusers_folder(engine: Flux2LocalEngine) -> None:
    folder = engine.config.weights_dir / "tiny" / "black-forest-labs" / "FLUX.2-dev"
    engine.pipeline()
    names = {p.name for p in folder.iterdir()}
    assert {
        "model_index.json",
        "transformer",
        "vae",
        "text_encoder",
        "tokenizer",
        "scheduler",
        TINY_MARKER,
    } <= names
    assert type(engine.pipeline()).__name__ == "Flux2Pipeline"


def test_width_and_height_are_honoured(engine: Flux2LocalEngine) -> None:
    data, seen, debugoutput = steps_of(engine, job(width=96, height=64))
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == ("PNG", (96, 64))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert (
        "ran locally on tiny test weights of black-forest-labs/FLUX.2-dev instead of flux-2-pro"
        in debugoutput
    )


def test_same_seed_same_bytes_other_seed_other_bytes(engine: Flux2LocalEngine) -> None:
    first, _, _ = steps_of(engine, job(seed=11, height=80))
    again, _, _ = steps_of(engine, job(seed=11, height=80))
    other, _, _ = steps_of(engine, job(seed=12, height=80))
    assert first == again
    assert first != other


def test_jpeg_output(engine: Flux2LocalEngine) -> None:
    result = engine.run(job(outputFormat="jpeg", width=64, height=96), lambda s, t: None)
    image = result.images[0]
    assert (image.content_type, image.extension) == ("image/jpeg", "jpeg")
    assert Image.open(io.BytesIO(image.data)).size == (64, 96)


def test_kill_stops_at_the_next_step(engine: Flux2LocalEngine) -> None:
    seen: list[int] = []

    def kill_at_two(step: int, total: int) -> None:
        seen.append(step)
        if step == 2:
            raise TaskKilled("killed")

    with pytest.raises(TaskKilled):
        engine.run(job(), kill_at_two)
    assert seen == [1, 2]
    # the pipeline is still usable afterwards
    data, _, _ = steps_of(engine, job())
    assert data.startswith(b"\x89PNG")


def test_a_folder_of_tiny_flux1_weights_gets_tiny_flux2(tmp_path: Path) -> None:
    root = tmp_path / "weights"
    (root / "black-forest-labs" / "FLUX.1-dev").mkdir(parents=True)
    (root / "black-forest-labs" / "FLUX.1-dev" / TINY_MARKER).write_text("{}")
    config = EngineConfig(data_dir=tmp_path / "data", weights=str(root), backends={"flux-2-pro-t2i": "local"})
    assert EngineRegistry(config).unavailable_reason("bfl-flux-2-pro") is None
    empty = EngineConfig(
        data_dir=tmp_path / "data", weights=str(tmp_path), backends={"flux-2-pro-t2i": "local"}
    )
    reason = EngineRegistry(empty).unavailable_reason("bfl-flux-2-pro")
    assert reason and "FLUX.2-dev" in reason and "model_index.json" in reason


def test_klein_runs_through_flux2_klein_pipeline(tmp_path: Path) -> None:
    config = EngineConfig(
        data_dir=tmp_path,
        weights="tiny",
        device="cpu",
        backends={"flux-2-pro-t2i": "local:black-forest-labs/FLUX.2-klein-4B"},
    )
    klein = EngineRegistry(config).get("bfl-flux-2-pro")
    assert type(klein.pipeline()).__name__ == "Flux2KleinPipeline"
    data, seen, debugoutput = steps_of(klein, job(width=80, height=64))
    assert Image.open(io.BytesIO(data)).size == (80, 64)
    assert len(seen) == 4
    assert (
        "ran locally on tiny test weights of black-forest-labs/FLUX.2-klein-4B instead of flux-2-pro"
        in debugoutput
    )
    again, _, _ = steps_of(klein, job(width=80, height=64))
    assert again == data
