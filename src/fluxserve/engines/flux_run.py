"""Running a FLUX.1 text-to-image pipeline for one task: seeds, progress, kill, PNG bytes.

Shared by the Krea-dev engine and the FLUX.1-dev LoRA engine.

Seeds: image ``i`` of a task (0-based) is generated with ``torch.Generator(device).manual_seed(seed + i)``
(modulo 2**64), one pipeline call per image, so every image can be reproduced on its own: image 1 of
a ``samples=2`` task at seed 7 is the image of a ``samples=1`` task at seed 8. Batched runs
(:func:`run_text_to_image_batch`) seed each batch row the same way.

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
from fluxserve.engines.prompt_cache import PromptCache
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

    def loop_shape(self) -> tuple:
        """What tasks sharing one batched denoising loop must agree on (``extra`` is engine-set)."""
        return (self.width, self.height, self.steps, self.scale)

    def image_seeds(self) -> list[int]:
        return [(self.seed + index) % SEED_MODULUS for index in range(self.samples)]


def run_text_to_image(
    pipe: Any,
    device: str,
    request: TextToImage,
    progress: StepCallback,
    prompts: PromptCache | None = None,
) -> list[GeneratedImage]:
    """Generate ``request.samples`` PNG images with ``pipe``; lets TaskKilled propagate.

    ``prompts`` (the home's cache) spares re-encoding a prompt seen before.
    """
    import torch

    total = request.steps * request.samples
    try:
        with torch.inference_mode():
            encoding = (prompts if prompts is not None else PromptCache(0)).encode(pipe, request.prompt)
            images = []
            for index, seed in enumerate(request.image_seeds()):
                done = index * request.steps
                generator = torch.Generator(_generator_device(device)).manual_seed(seed)
                output = pipe(
                    prompt_embeds=encoding.prompt_embeds,
                    pooled_prompt_embeds=encoding.pooled_prompt_embeds,
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


def run_text_to_image_batch(
    pipe: Any,
    device: str,
    requests: list[TextToImage],
    progresses: list[StepCallback],
    prompts: PromptCache | None = None,
) -> list[list[GeneratedImage] | TaskKilled]:
    """Several tasks in one pipeline call: one batch row per image, each with its own generator.

    The requests must agree on everything but prompt, seed and samples (the caller grouped them by
    batch key). Row ``r`` of task ``m`` is seeded exactly as :func:`run_text_to_image` seeds it, and
    diffusers draws each row's initial noise from its own generator, so each image is the one the
    task would get alone, up to float rounding of the batched matrix products (README: Batching).

    Kill: each task's ``progress`` is called every step; when it raises TaskKilled the task leaves
    the batch (its entry is that TaskKilled) and the others go on. Its rows stay in the tensors
    until the end: FluxPipeline lets a step callback replace ``latents`` and ``prompt_embeds`` but
    not ``pooled_prompt_embeds`` or the guidance vector, so rows cannot be dropped mid-loop without
    breaking the shapes; the rows' results are discarded. When every task is killed the pipeline
    stops at once.
    """
    import torch

    base = requests[0]
    rows = [(member, seed) for member, request in enumerate(requests) for seed in request.image_seeds()]
    first_row = {
        member: next(i for i, row in enumerate(rows) if row[0] == member) for member in range(len(requests))
    }
    dropped: dict[int, TaskKilled] = {}

    def on_step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        from fluxserve.engines.preview_calibration import preview_source

        latents = callback_kwargs.get("latents")
        for member, progress in enumerate(progresses):
            if member in dropped:
                continue
            preview = None
            if latents is not None:
                preview = preview_source(pipe, latents, base.height, base.width, row=first_row[member])
            try:
                report_step(progress, step + 1, base.steps, preview)
            except TaskKilled as exc:
                log.info("batch member %d killed at step %d; the others go on", member, step + 1)
                dropped[member] = exc
        if len(dropped) == len(requests):
            raise TaskKilled(f"every task of the batch was killed (step {step + 1}/{base.steps})")
        return callback_kwargs

    try:
        with torch.inference_mode():
            cache = prompts if prompts is not None else PromptCache(0)
            encodings = [cache.encode(pipe, request.prompt) for request in requests]
            output = pipe(
                prompt_embeds=torch.cat([encodings[member].prompt_embeds for member, _ in rows]),
                pooled_prompt_embeds=torch.cat(
                    [encodings[member].pooled_prompt_embeds for member, _ in rows]
                ),
                guidance_scale=base.scale,
                num_inference_steps=base.steps,
                width=base.width,
                height=base.height,
                generator=[torch.Generator(_generator_device(device)).manual_seed(seed) for _, seed in rows],
                callback_on_step_end=on_step_end,
                output_type="pil",
                **base.extra,
            )
    except TaskKilled:
        if len(dropped) == len(requests):
            return [dropped[member] for member in range(len(requests))]
        raise
    except TaskFailure:
        raise
    except Exception as exc:
        raise _as_task_failure(exc) from exc
    results: list[list[GeneratedImage] | TaskKilled] = []
    for member in range(len(requests)):
        if member in dropped:
            results.append(dropped[member])
        else:
            results.append([encode_png(output.images[i]) for i, row in enumerate(rows) if row[0] == member])
    return results


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
