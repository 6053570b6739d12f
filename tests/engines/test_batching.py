"""Cross-request batching at the engine level, on tiny weights: one pipeline call for several
tasks gives each task the images it gets alone (within the documented tolerance), a killed member
leaves the batch without failing the others, and prompt encodings are cached without changing bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fluxserve.catalog import Catalog
from fluxserve.catalog.request import validate_request
from fluxserve.engines.base import BatchItem, EngineConfig, EngineJob, GenerationResult
from fluxserve.engines.registry import EngineRegistry
from fluxserve.errors import TaskKilled

KREA = "black-forest-labs/FLUX.1-Krea-dev"
LORA = "wiro/text-to-image-flux-lora-fast"
PIXEL_TOLERANCE = 2
"""README, Batching: a batched image differs from the same task run alone by at most 2 (of 255)
per channel; the tiny weights on the CPU show at most 1 (float rounding of batched matmuls)."""


def _job(tool: str = KREA, **overrides) -> EngineJob:
    raw = {
        "prompt": "a cat photo",
        "steps": 3,
        "scale": 4.5,
        "samples": 1,
        "seed": 42,
        "width": 64,
        "height": 64,
    }
    raw.update(overrides)
    params = validate_request(Catalog.builtin().get(tool), {k: str(v) for k, v in raw.items()}).values
    return EngineJob(task_id="t", tool=tool, params=params)


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _max_difference(first: bytes, second: bytes) -> int:
    return int(np.abs(_pixels(first) - _pixels(second)).max())


def _quiet(step: int, total: int) -> None:
    pass


@pytest.fixture
def registry(tiny_config: EngineConfig) -> EngineRegistry:
    return EngineRegistry(tiny_config)


def test_batched_images_equal_single_runs_within_the_tolerance(registry: EngineRegistry) -> None:
    engine = registry.get("flux1-krea-dev")
    jobs = [_job(prompt="a red fox", seed=1), _job(prompt="a blue whale", seed=7, samples=2), _job(seed=99)]
    assert len({engine.batch_signature(job, None) for job in jobs}) == 1
    results = engine.generate_batch([BatchItem(job, None, _quiet) for job in jobs])
    for job, result in zip(jobs, results, strict=True):
        assert isinstance(result, GenerationResult)
        alone = engine.run(job, _quiet)
        assert len(result.images) == len(alone.images) == job.params["samples"]
        for batched, single in zip(result.images, alone.images, strict=True):
            assert _max_difference(batched.data, single.data) <= PIXEL_TOLERANCE
    # each row really is its own task's image: a different seed is far away
    assert _max_difference(results[0].images[0].data, results[2].images[0].data) > 10 * PIXEL_TOLERANCE


def test_each_member_gets_its_own_progress_and_previews(registry: EngineRegistry) -> None:
    engine = registry.get("flux1-krea-dev")
    seen: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    previews: dict[int, list[int]] = {0: [], 1: []}

    class Progress:
        def __init__(self, member: int) -> None:
            self.member = member

        def __call__(self, step: int, total: int) -> None:
            seen[self.member].append((step, total))

        def take_preview(self, step: int, total: int, source) -> None:
            rgb = source()
            assert rgb is not None and rgb.shape == (8, 8, 3)
            previews[self.member].append(int(rgb.sum()))

    jobs = [_job(seed=1), _job(seed=2)]
    engine.generate_batch([BatchItem(job, None, Progress(index)) for index, job in enumerate(jobs)])
    assert seen[0] == seen[1] == [(1, 3), (2, 3), (3, 3)]
    assert len(previews[0]) == len(previews[1]) == 3
    assert previews[0] != previews[1]  # each member previews its own latents


def test_a_killed_member_leaves_the_batch_and_the_others_finish(registry: EngineRegistry) -> None:
    engine = registry.get("flux1-krea-dev")
    jobs = [_job(seed=1), _job(seed=2), _job(seed=3)]
    calls: list[int] = []

    def killed_at_two(step: int, total: int) -> None:
        calls.append(step)
        if step >= 2:
            raise TaskKilled(f"killed at step {step}/{total}")

    items = [
        BatchItem(jobs[0], None, _quiet),
        BatchItem(jobs[1], None, killed_at_two),
        BatchItem(jobs[2], None, _quiet),
    ]
    results = engine.generate_batch(items)
    assert isinstance(results[1], TaskKilled)
    assert calls == [1, 2]  # not asked again once it left
    for index in (0, 2):
        assert isinstance(results[index], GenerationResult)
        alone = engine.run(jobs[index], _quiet)
        assert _max_difference(results[index].images[0].data, alone.images[0].data) <= PIXEL_TOLERANCE


def test_when_every_member_is_killed_the_call_ends_at_once(registry: EngineRegistry) -> None:
    engine = registry.get("flux1-krea-dev")
    steps: list[int] = []

    def killed(step: int, total: int) -> None:
        steps.append(step)
        raise TaskKilled("killed")

    results = engine.generate_batch([BatchItem(_job(seed=seed, steps=4), None, killed) for seed in (1, 2)])
    assert all(isinstance(result, TaskKilled) for result in results)
    assert steps == [1, 1]


def test_prompt_cache_hits_give_identical_bytes(tiny_config: EngineConfig) -> None:
    from dataclasses import replace

    cached = EngineRegistry(tiny_config).get("flux1-krea-dev")
    first = cached.run(_job(prompt="a lighthouse"), _quiet).images[0].data
    assert (cached.home.prompts.hits, cached.home.prompts.misses) == (0, 1)
    again = cached.run(_job(prompt="a lighthouse"), _quiet).images[0].data
    assert cached.home.prompts.hits == 1
    assert again == first
    uncached = EngineRegistry(replace(tiny_config, prompt_cache_size=0)).get("flux1-krea-dev")
    assert uncached.run(_job(prompt="a lighthouse"), _quiet).images[0].data == first
    assert len(uncached.home.prompts) == 0


def test_lora_tasks_batch_only_with_the_same_adapters_and_scales(registry: EngineRegistry) -> None:
    engine = registry.get("flux1-dev-lora")
    base = _job(LORA, seed=1, steps=2)
    poster = _job(LORA, seed=2, steps=2, selectedLoraModel="678")
    poster_again = _job(LORA, seed=3, steps=2, selectedLoraModel="678", prompt="another prompt")
    signature = [engine.batch_signature(job, engine.preprocess(job)) for job in (base, poster, poster_again)]
    assert signature[0] != signature[1] and signature[1] == signature[2]
    plans = [engine.preprocess(job) for job in (poster, poster_again)]
    results = engine.generate_batch(
        [BatchItem(job, plan, _quiet) for job, plan in zip((poster, poster_again), plans, strict=True)]
    )
    for job, result in zip((poster, poster_again), results, strict=True):
        alone = engine.run(job, _quiet)
        assert _max_difference(result.images[0].data, alone.images[0].data) <= PIXEL_TOLERANCE
