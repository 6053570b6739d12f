"""Local FLUX.1 text-to-image engines (catalog engine ``flux1-krea-dev``).

The pipeline comes from the shared FLUX.1 model home (one copy of encoders and VAE for every FLUX.1
tool); see :mod:`fluxserve.engines.flux_run` for seeds (image ``i`` uses ``seed + i``), progress
and kill semantics.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from fluxserve.engines.base import (
    BatchItem,
    Engine,
    EngineConfig,
    EngineJob,
    GenerationResult,
    StepCallback,
)
from fluxserve.engines.flux_run import TextToImage, run_text_to_image, run_text_to_image_batch
from fluxserve.engines.home import ModelHome, get_home
from fluxserve.engines.spec import EngineSpec, ModelRepo
from fluxserve.engines.weights import KREA_DEV
from fluxserve.errors import TaskKilled

log = logging.getLogger(__name__)


class FluxTextEngine(Engine[None]):
    """Plain FLUX.1 text-to-image on one model repo of the home (no adapters)."""

    def __init__(self, home: ModelHome, repo: str) -> None:
        self.home = home
        self.repo = repo

    def generate(self, job: EngineJob, prepared: None, progress: StepCallback) -> GenerationResult:
        request = TextToImage.from_params(job.params)
        with self.home.use(self.repo) as pipe:
            images = run_text_to_image(pipe, self.home.device, request, progress, self.home.prompts)
        return GenerationResult(images=images, debugoutput=seeds_note(request))

    def batch_signature(self, job: EngineJob, prepared: None) -> Hashable | None:
        return TextToImage.from_params(job.params).loop_shape()

    def generate_batch(self, items: list[BatchItem]) -> list[GenerationResult | TaskKilled]:
        requests = [TextToImage.from_params(item.job.params) for item in items]
        with self.home.use(self.repo) as pipe:
            results = run_text_to_image_batch(
                pipe, self.home.device, requests, [item.progress for item in items], self.home.prompts
            )
        return [
            result if isinstance(result, TaskKilled) else GenerationResult(result, seeds_note(request))
            for result, request in zip(results, requests, strict=True)
        ]


def seeds_note(request: TextToImage) -> str:
    """Tell the user which seed made which image (image i uses seed + i)."""
    if request.samples == 1:
        return ""
    return "image seeds: " + ", ".join(str(seed) for seed in request.image_seeds())


def build_krea_engine(config: EngineConfig, registry: Any) -> Engine:
    """Factory for ``flux1-krea-dev`` (black-forest-labs/FLUX.1-Krea-dev)."""
    return FluxTextEngine(get_home(config, registry), KREA_DEV)


SPEC = EngineSpec(
    name="flux1-krea-dev",
    factory="fluxserve.engines.flux_text:build_krea_engine",
    repos=(ModelRepo(KREA_DEV, tiny_seed=11),),
)
