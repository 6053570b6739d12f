"""``wiro/flux_kontext_dev_with_2_image``: FLUX.1-Kontext-dev editing guided by two input images.

Inputs: ``inputImageUrl`` and ``inputImage2Url``, each an :class:`~fluxserve.catalog.images.ImageRef`
in ``job.images`` (resolved by the API): a stored file (sent with the task or uploaded earlier) that
is opened from its local path, or an http(s) URL fetched through :mod:`fluxserve.net.safe_fetch`.
Both images are required.

How the two images are combined: each is encoded on its own and both are placed on Kontext's
reference plane side by side with offset positions (ComfyUI's chained ``ReferenceLatent``), see
:mod:`fluxserve.engines.kontext_refs`. Not stitched into one picture: each reference keeps its own
size and aspect ratio and the model sees two distinct images.

Output size follows the FIRST image: its aspect ratio, scaled down to about one megapixel when
larger, rounded to multiples of 16 (:func:`~fluxserve.engines.kontext_refs.snap_size`), passed to
the pipeline as exact ``width``/``height``/``max_area`` so diffusers never falls back to
1024x1024. Sample ``i`` uses seed ``seed + i`` and equals a one-sample run with that seed.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from PIL import Image

from fluxserve.engines.base import (
    Engine,
    EngineConfig,
    EngineJob,
    GeneratedImage,
    GenerationResult,
    StepCallback,
)
from fluxserve.engines.flux_run import encode_png
from fluxserve.engines.prompt_cache import PromptCache
from fluxserve.engines.spec import EngineSpec, ModelRepo
from fluxserve.engines.weights import KONTEXT_DEV
from fluxserve.errors import InputFetchError, TaskFailure, TaskKilled
from fluxserve.net.images import open_input_image
from fluxserve.net.safe_fetch import FetchPolicy, fetch_to_file

log = logging.getLogger(__name__)

IMAGE_INPUTS: tuple[tuple[str, str], ...] = (
    ("inputImageUrl", "inputImage"),
    ("inputImage2Url", "inputImage2"),
)
"""(input name, multipart file part) of the two images, in order: the first sets the output size."""

PipelineProvider = Callable[[], AbstractContextManager[Any]]
"""Returns a context manager holding the loaded ``FluxKontextPipeline`` for one run."""


class KontextTwoImageEngine(Engine[list[Image.Image]]):
    """Runs FLUX.1 Kontext with two reference images; long-lived, shared by worker threads."""

    def __init__(
        self,
        config: EngineConfig,
        pipeline: PipelineProvider,
        *,
        max_area: int | None = None,
        prompts: PromptCache | None = None,
    ) -> None:
        self.config = config
        self._pipeline = pipeline
        self._prompts = prompts if prompts is not None else PromptCache(0)  # the home's, shared
        self._max_area = max_area
        self._policy = FetchPolicy(allow_private=config.allow_private_urls)

    def preprocess(self, job: EngineJob) -> list[Image.Image]:
        """Fetch (or take the uploaded) images, check and decode them, in ``IMAGE_INPUTS`` order."""
        with _workdir(job) as workdir:
            return [self._load_input(job, name, part, workdir) for name, part in IMAGE_INPUTS]

    def _load_input(self, job: EngineJob, name: str, part: str, workdir: Path) -> Image.Image:
        ref = job.images.get(name)
        if ref is None:
            raise InputFetchError(
                f"{name}: no image was given; this tool needs two images: send an http(s) URL in {name} "
                f"or upload a file as {part}"
            )
        if ref.path is not None:
            return open_input_image(ref.path, name)
        fetched = fetch_to_file(
            ref.url, workdir / f"{name}.download", self._policy, what=name, should_stop=job.should_stop
        )
        return open_input_image(fetched.path, name)

    def generate(
        self, job: EngineJob, prepared: list[Image.Image], progress: StepCallback
    ) -> GenerationResult:
        images = prepared
        from fluxserve.engines.kontext_refs import KONTEXT_MAX_AREA, snap_size

        max_area = self._max_area or KONTEXT_MAX_AREA
        width, height = snap_size(images[0].width, images[0].height, max_area)
        with self._pipeline() as pipeline:
            outputs = _run(pipeline, job.params, images, (width, height, max_area), progress, self._prompts)
        log.info("task %s: %d Kontext image(s) of %dx%d", job.task_id, len(outputs), width, height)
        return GenerationResult(
            images=outputs,
            debugoutput=f"FLUX.1-Kontext-dev, 2 reference images, output {width}x{height}",
        )


def _run(
    pipeline: Any,
    params: dict[str, Any],
    images: list[Image.Image],
    size: tuple[int, int, int],
    progress: StepCallback,
    prompts: PromptCache,
) -> list[GeneratedImage]:
    """Encode the prompt and the references once, then denoise each sample with its own seed.

    Seeds, progress and kill work as in :mod:`fluxserve.engines.flux_run` (image ``i`` uses
    ``seed + i`` on a generator on the execution device; ``total = steps * samples``).
    """
    import torch

    from fluxserve.engines.flux_run import SEED_MODULUS, _as_task_failure, _generator_device, _step_callback
    from fluxserve.engines.kontext_refs import MultiReferenceKontextPipeline

    width, height, max_area = size
    steps, samples, seed = params["steps"], params["samples"], params["seed"]
    total = steps * samples
    try:
        with torch.inference_mode():
            multi = MultiReferenceKontextPipeline(**pipeline.components)  # same modules, nothing copied
            multi.set_progress_bar_config(disable=True)
            device = multi._execution_device
            multi.references = multi.encode_references(images, max_area)
            encoding = prompts.encode(multi, params["prompt"])  # same encoders as every FLUX.1 tool
            prompt_embeds, pooled = encoding.prompt_embeds, encoding.pooled_prompt_embeds
            outputs: list[GeneratedImage] = []
            for index in range(samples):
                generator = torch.Generator(_generator_device(str(device)))
                generator.manual_seed((seed + index) % SEED_MODULUS)
                result = multi(
                    image=None,  # the references are already encoded and placed
                    prompt_embeds=prompt_embeds,
                    pooled_prompt_embeds=pooled,
                    width=width,
                    height=height,
                    max_area=width * height,  # the pipeline rescales to this area: keep our exact size
                    _auto_resize=False,
                    num_inference_steps=steps,
                    guidance_scale=params["scale"],
                    generator=generator,
                    callback_on_step_end=_step_callback(progress, index * steps, total, (height, width)),
                )
                outputs.append(encode_png(result.images[0]))
            return outputs
    except (TaskKilled, TaskFailure):
        raise
    except Exception as exc:
        raise _as_task_failure(exc) from exc


@contextlib.contextmanager
def _workdir(job: EngineJob) -> Iterator[Path]:
    """The task's scratch folder, or a temporary one removed afterwards."""
    if job.workdir is not None:
        Path(job.workdir).mkdir(parents=True, exist_ok=True)
        yield Path(job.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="fluxserve-kontext-") as tmp:
        yield Path(tmp)


def build_kontext_engine(config: EngineConfig, registry: Any) -> Engine:
    """Factory of ``flux1-kontext-dev-2image`` (see ``SPEC``): uses the shared FLUX.1 home."""
    from fluxserve.engines.home import get_home

    home = get_home(config, registry)
    return KontextTwoImageEngine(config, lambda: home.use(KONTEXT_DEV), prompts=home.prompts)


SPEC = EngineSpec(
    name="flux1-kontext-dev-2image",
    factory="fluxserve.engines.flux_kontext:build_kontext_engine",
    repos=(ModelRepo(KONTEXT_DEV, pipeline="FluxKontextPipeline", tiny_seed=13),),
)

__all__ = ["IMAGE_INPUTS", "SPEC", "KontextTwoImageEngine", "build_kontext_engine"]
