"""flux-pro-1-1-ultra on a local FLUX.1 model, at the aspect ratio's ~4-megapixel size.

FLUX1.1 [pro] Ultra renders about 4 MP (2048x2048 at 1:1); the stand-in renders the requested
aspect ratio at the same pixel count on FLUX.1-dev (or FLUX.1-Krea-dev), through the shared FLUX.1
model home, so the weights are loaded once for every FLUX.1 tool. ``promptUpsampling`` and
``safetyTolerance`` have no local meaning; ``debugoutput`` names the model that ran and the size.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fluxserve.engines.base import Engine, EngineConfig, EngineJob, GenerationResult, StepCallback
from fluxserve.engines.flux2_local import encode_image
from fluxserve.engines.partner import FLUX1_DEV, PartnerTool
from fluxserve.errors import TaskFailure, TaskKilled

log = logging.getLogger(__name__)

ULTRA_MEGAPIXELS = 4.0
TINY_MEGAPIXELS = 0.1
"""Tiny test weights draw noise; a ~0.1 MP image keeps CPU tests fast at every aspect ratio."""
STEPS, GUIDANCE = 28, 3.5  # FLUX.1-dev's recommended sampling
TINY_STEPS = 2


def ultra_size(aspect_ratio: str, megapixels: float = ULTRA_MEGAPIXELS) -> tuple[int, int]:
    """(width, height), multiples of 16, with ``width / height`` close to ``aspect_ratio`` and about
    ``megapixels`` * 2**20 pixels: 1:1 -> 2048x2048, 16:9 -> 2736x1536, 21:9 -> 3120x1344.

    ``aspect_ratio`` is one of the tool's options (the catalog checked it), all ``W:H`` of positive ints.
    """
    across, down = (int(part) for part in aspect_ratio.split(":"))
    pixels = megapixels * 2**20
    width = math.sqrt(pixels * across / down)
    height = width * down / across
    return max(16, round(width / 16) * 16), max(16, round(height / 16) * 16)


class UltraLocalEngine(Engine[None]):
    """Runs ultra's inputs on a FLUX.1 text-to-image pipeline of the shared model home."""

    def __init__(self, config: EngineConfig, repo: str = FLUX1_DEV, registry: Any = None) -> None:
        self.config = config
        self.repo = repo
        self.registry = registry
        self._home: Any = None

    def home(self) -> Any:
        if self._home is None:
            from fluxserve.engines.home import ModelHome, get_home

            self._home = get_home(self.config, self.registry) if self.registry else ModelHome(self.config)
        return self._home

    def _is_tiny(self) -> bool:
        from fluxserve.engines.tiny import is_tiny

        source = self.home().source
        return source.kind == "folder" and is_tiny(source.root / self.repo)

    def generate(self, job: EngineJob, prepared: None, progress: StepCallback) -> GenerationResult:
        import torch

        params = job.params
        tiny = self._is_tiny()
        aspect_ratio = params["aspectRatio"]
        width, height = ultra_size(aspect_ratio, TINY_MEGAPIXELS if tiny else ULTRA_MEGAPIXELS)
        seed = params["seed"]
        steps = TINY_STEPS if tiny else STEPS

        from fluxserve.engines.flux_run import _step_callback

        on_step_end = _step_callback(progress, 0, steps, (height, width))  # TaskKilled propagates at once

        home = self.home()
        try:
            with home.use(self.repo) as pipe, torch.inference_mode():
                generator = torch.Generator("cpu").manual_seed(seed)
                output = pipe(
                    prompt=params["prompt"],
                    width=width,
                    height=height,
                    num_inference_steps=steps,
                    guidance_scale=GUIDANCE,
                    generator=generator,
                    callback_on_step_end=on_step_end,
                )
        except (TaskKilled, TaskFailure):
            raise
        except Exception as exc:
            log.exception("ultra stand-in on %s failed", self.repo)
            raise TaskFailure(f"Image generation on {self.repo} failed: {type(exc).__name__}: {exc}") from exc
        image = encode_image(output.images[0], params["outputFormat"])
        label = f"tiny test weights of {self.repo}" if tiny else self.repo
        return GenerationResult(
            images=[image],
            debugoutput=(
                f"ran locally on {label} instead of flux-pro-1.1-ultra "
                f"({aspect_ratio} at {width}x{height}, seed {seed}, {steps} steps)"
            ),
        )


def build_local(config: EngineConfig, repo: str, tool: PartnerTool, registry: Any = None) -> Engine:
    """The partner tool's local backend (``FLUXSERVE_BACKEND_FLUX_PRO_1_1_ULTRA=local``)."""
    return UltraLocalEngine(config, repo, registry=registry)
