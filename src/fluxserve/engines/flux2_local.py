"""flux-2-pro-t2i on open FLUX.2 weights: ``Flux2Pipeline`` (FLUX.2-dev) or ``Flux2KleinPipeline``.

A stand-in for BFL's FLUX.2 [pro]: it honours ``prompt``, ``width``, ``height``, ``seed`` and
``outputFormat`` (``safetyTolerance`` has no local meaning: there is no moderation model here).
The substitution is never silent: ``debugoutput`` names the model that ran.

Weights, per ``EngineConfig.weights``: ``hub`` loads the repo id (cache ``<data>/weights/hub``),
``tiny`` builds tiny random FLUX.2-dev weights under ``<data>/weights/tiny`` on first use, and a
folder is read as ``<folder>/<owner>/<repo>/`` (a folder of tiny FLUX.1 test weights gets tiny
FLUX.2-dev built into it on demand).
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import Any

from fluxserve.engines.base import (
    Engine,
    EngineConfig,
    EngineJob,
    GeneratedImage,
    GenerationResult,
    StepCallback,
    report_step,
)
from fluxserve.engines.partner import FLUX2_DEV, PartnerTool, is_tiny_root
from fluxserve.engines.weights import WeightsSource, load_or_explain
from fluxserve.errors import TaskFailure, TaskKilled

log = logging.getLogger(__name__)


def _sampling_defaults(repo: str, tiny: bool) -> tuple[int, float]:
    """(steps, guidance) per model: the model cards' recommendations; few steps for tiny weights."""
    lowered = repo.lower()
    if tiny:
        return 4, (1.0 if "klein" in lowered else 4.0)
    if "klein" in lowered:
        return (50, 4.0) if "base" in lowered else (4, 1.0)  # klein 4B/9B are step-distilled
    return 50, 4.0


def encode_image(image: Any, output_format: str) -> GeneratedImage:
    """A PIL image -> PNG or JPEG bytes, as the tool's ``outputFormat`` asks."""
    buffer = io.BytesIO()
    if output_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
        return GeneratedImage(data=buffer.getvalue(), content_type="image/jpeg", extension="jpeg")
    image.save(buffer, format="PNG")
    return GeneratedImage(data=buffer.getvalue(), content_type="image/png", extension="png")


class Flux2LocalEngine(Engine[None]):
    """Runs FLUX.2 text-to-image on this machine; the pipeline is loaded on first use and kept."""

    def __init__(
        self, config: EngineConfig, repo: str = FLUX2_DEV, substitute_for: str = "flux-2-pro"
    ) -> None:
        self.config = config
        self.repo = repo
        self.substitute_for = substitute_for
        self._pipeline: Any = None
        self._tiny = False
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one run at a time per pipeline (schedulers keep state)

    # --- loading ---------------------------------------------------------------------------------

    def _source(self) -> tuple[WeightsSource, bool]:
        choice = (self.config.weights or "hub").strip()
        if choice == "hub":
            return WeightsSource("hub", cache_dir=self.config.weights_dir / "hub", label="hub"), False
        root = self.config.weights_dir / "tiny" if choice == "tiny" else Path(choice).expanduser().resolve()
        from fluxserve.engines.tiny import is_tiny
        from fluxserve.engines.tiny_flux2 import ensure_tiny_flux2

        if choice == "tiny" or is_tiny_root(root, self.repo):
            ensure_tiny_flux2(root, self.repo)
        return WeightsSource("folder", root=root, label=choice), is_tiny(root / self.repo)

    def pipeline(self) -> Any:
        with self._load_lock:
            if self._pipeline is None:
                self._pipeline = self._load()
            return self._pipeline

    def _load(self) -> Any:
        import torch
        from diffusers import Flux2KleinPipeline, Flux2Pipeline

        from fluxserve.engines.home import resolve_device

        source, self._tiny = self._source()
        device = resolve_device(self.config.device)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        cls = Flux2KleinPipeline if "klein" in self.repo.lower() else Flux2Pipeline

        def run() -> Any:
            pipe = cls.from_pretrained(source.location(self.repo), dtype=dtype, **source.load_kwargs())
            if self.config.cpu_offload and device.startswith("cuda"):
                pipe.enable_model_cpu_offload(device=device)
            else:
                pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            return pipe

        pipe = load_or_explain(self.config, source, self.repo, "the FLUX.2 pipeline", run)
        log.info("loaded %s (%s) on %s", self.repo, cls.__name__, device)
        return pipe

    # --- running ---------------------------------------------------------------------------------

    def generate(self, job: EngineJob, prepared: None, progress: StepCallback) -> GenerationResult:
        import torch

        params = job.params
        width, height, seed = params["width"], params["height"], params["seed"]
        pipe = self.pipeline()
        steps, guidance = _sampling_defaults(self.repo, self._tiny)
        killed: list[TaskKilled] = []

        def on_step_end(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            from fluxserve.engines.preview_calibration import preview_source

            try:
                report_step(
                    progress, step + 1, steps, preview_source(pipeline, tensors["latents"], height, width)
                )
            except TaskKilled as exc:  # stop at this step; the pipeline finishes its loop quietly
                killed.append(exc)
                pipeline._interrupt = True
            return tensors

        kwargs: dict[str, Any] = {}
        if self._tiny:
            from fluxserve.engines.tiny_flux2 import TEXT_OUT_LAYERS

            kwargs["text_encoder_out_layers"] = TEXT_OUT_LAYERS
        try:
            with self._run_lock:
                generator = torch.Generator(device="cpu").manual_seed(seed)
                output = pipe(
                    prompt=params["prompt"],
                    width=width,
                    height=height,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=generator,
                    callback_on_step_end=on_step_end,
                    **kwargs,
                )
        except Exception as exc:
            log.exception("FLUX.2 generation on %s failed", self.repo)
            raise TaskFailure(f"Image generation on {self.repo} failed: {type(exc).__name__}: {exc}") from exc
        if killed:
            raise killed[0]
        image = encode_image(output.images[0], params["outputFormat"])
        label = f"tiny test weights of {self.repo}" if self._tiny else self.repo
        return GenerationResult(
            images=[image],
            debugoutput=(
                f"ran locally on {label} instead of {self.substitute_for} "
                f"({width}x{height}, seed {seed}, {steps} steps)"
            ),
        )


def build_local(config: EngineConfig, repo: str, tool: PartnerTool, registry: object = None) -> Engine:
    """The partner tool's local backend (``FLUXSERVE_BACKEND_FLUX_2_PRO_T2I=local[:<repo>]``)."""
    return Flux2LocalEngine(config, repo, substitute_for=tool.bfl_model)
