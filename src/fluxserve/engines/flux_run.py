"""Running a FLUX.1 text-to-image pipeline for one task: seeds, progress, kill, PNG bytes.

Shared by the Krea-dev engine and the FLUX.1-dev LoRA engine.

Seeds: image ``i`` of a task (0-based) is generated with ``torch.Generator(device).manual_seed(seed + i)``
(modulo 2**64), one pipeline call per image, so every image can be reproduced on its own: image 1 of
a ``samples=2`` task at seed 7 is the image of a ``samples=1`` task at seed 8.

Progress and kill: ``progress(step, total)`` is called after every denoising step, counted over all
images (``total = steps * samples``). When the task is killed, ``progress`` raises TaskKilled from
inside ``callback_on_step_end``; it propagates out of the pipeline at once (no VAE decode follows,
unlike ``pipe._interrupt``), and the pipeline stays usable for the next task.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

from fluxserve.engines.base import GeneratedImage, StepCallback, report_step
from fluxserve.errors import TaskFailure, TaskKilled, WeightsUnavailableError

log = logging.getLogger(__name__)

SEED_MODULUS = 2**64


@dataclass(frozen=True)
class TextToImage:
    """The pipeline arguments of one text-to-image task (already validated by the catalog)."""

    prompt: str
    steps: int
    scale: float
    samples: int
    seed: int
    width: int
    height: int
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. joint_attention_kwargs

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> TextToImage:
        values = {
            name: params[name] for name in ("prompt", "steps", "scale", "samples", "seed", "width", "height")
        }
        values.update(overrides)
        return cls(**values)

    def image_seeds(self) -> list[int]:
        return [(self.seed + index) % SEED_MODULUS for index in range(self.samples)]


def run_text_to_image(
    pipe: Any, device: str, request: TextToImage, progress: StepCallback
) -> list[GeneratedImage]:
    """Generate ``request.samples`` PNG images with ``pipe``; lets TaskKilled propagate."""
    import torch

    total = request.steps * request.samples
    try:
        with torch.inference_mode():
            prompt_embeds, pooled, _ = pipe.encode_prompt(
                prompt=request.prompt, prompt_2=None, device=pipe._execution_device
            )
            images = []
            for index, seed in enumerate(request.image_seeds()):
                done = index * request.steps
                generator = torch.Generator(_generator_device(device)).manual_seed(seed)
                output = pipe(
                    prompt_embeds=prompt_embeds,
                    pooled_prompt_embeds=pooled,
                    guidance_scale=request.scale,
                    num_inference_steps=request.steps,
                    width=request.width,
                    height=request.height,
                    generator=generator,
                    callback_on_step_end=_step_callback(
                        progress, done, total, (request.height, request.width)
                    ),
                    output_type="pil",
                    **request.extra,
                )
                images.append(encode_png(output.images[0]))
            return images
    except (TaskKilled, TaskFailure):
        raise
    except Exception as exc:
        raise _as_task_failure(exc) from exc


def _generator_device(device: str) -> str:
    """The device for ``torch.Generator``: the pipeline's own (``cuda:1`` stays ``cuda:1``)."""
    return device


def _step_callback(progress: StepCallback, done: int, total: int, size: tuple[int, int] | None = None):
    """``callback_on_step_end`` reporting progress and (when ``size`` = (height, width) is known)
    a lazy latent preview; see :mod:`fluxserve.engines.preview_calibration`."""

    def on_step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        preview = None
        if size is not None and "latents" in callback_kwargs:
            from fluxserve.engines.preview_calibration import preview_source

            preview = preview_source(pipe, callback_kwargs["latents"], *size)
        report_step(progress, done + step + 1, total, preview)  # TaskKilled propagates out of the pipeline
        return callback_kwargs

    return on_step_end


def encode_png(image: Any) -> GeneratedImage:
    """A PIL image as PNG bytes (deterministic: same pixels, same bytes)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return GeneratedImage(data=buffer.getvalue(), content_type="image/png", extension="png")


def _as_task_failure(exc: Exception) -> TaskFailure:
    if isinstance(exc, WeightsUnavailableError):
        return exc
    text = str(exc)
    if "out of memory" in text.lower():
        return TaskFailure(
            "The GPU ran out of memory while generating. Try a smaller width/height or fewer samples, "
            "or run the worker with FLUXSERVE_CPU_OFFLOAD=true."
        )
    log.exception("generation failed")
    return TaskFailure(
        f"Image generation failed: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
    )
