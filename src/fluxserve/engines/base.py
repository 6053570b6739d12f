"""The contract between the worker and every engine.

The worker builds an :class:`EngineJob` from a stored task, calls :meth:`Engine.preprocess`
(between task_preprocess_start and task_preprocess_end: fetch inputs, resolve adapters), which
returns the engine's own typed result, and then :meth:`Engine.generate` with that result
(task_start). ``job.params`` are the catalog's validated values, defaults filled in: engines use
them as they are, without parsing or checking them again. ``generate`` calls
``progress(step, total)`` after every denoising step (or every poll, for remote engines); that callback raises
:class:`fluxserve.errors.TaskKilled` when the task was killed, and engines must let it propagate.
Anything else that goes wrong is raised as :class:`fluxserve.errors.TaskFailure` with a message a
user can act on.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from fluxserve.catalog.images import ImageRef
from fluxserve.errors import TaskKilled

StepCallback = Callable[[int, int], None]
"""``progress(step, total)``: called after each step, 1-based. May raise TaskKilled."""

PreviewSource = Callable[[], Any]
"""Returns the current latents as an RGB ``uint8`` array ``(h, w, 3)`` (or None); only called
when a preview is due, so building one costs nothing on the other steps."""


def report_step(progress: StepCallback, step: int, total: int, preview: PreviewSource | None = None) -> None:
    """What engines call after each denoising step: progress (may raise TaskKilled), then the
    preview source if the callback takes previews (``progress.take_preview(step, total, source)``,
    see :class:`fluxserve.worker.progress.StepProgress`); a plain ``progress(step, total)`` works too."""
    progress(step, total)
    take = getattr(progress, "take_preview", None)
    if preview is not None and take is not None:
        take(step, total, preview)


@dataclass(frozen=True)
class EngineConfig:
    """Everything engines need from the settings, as plain values (engines never see Settings)."""

    data_dir: Path
    weights: str = "hub"  # "hub" | "tiny" | a local folder
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    allow_private_urls: bool = False
    model_memory_gb: float = 0.0  # 0 = no budget
    cpu_offload: bool = False
    bfl_api_key: str = field(default="", repr=False)  # never in logs or reprs
    bfl_url: str = "https://api.bfl.ai"
    backends: dict[str, str] = field(default_factory=dict)  # tool slug -> backend (FLUXSERVE_BACKEND_*)
    max_loaded_loras: int = 8  # LoRA adapters kept loaded in the FLUX.1-dev transformer (LRU)
    prompt_cache_size: int = 32  # prompt encodings kept by the FLUX.1 home (LRU); 0 = none
    max_lora_bytes: int = 2 * 2**30  # size cap of a LoRA downloaded from selectedLoraModelPrivateUrl
    lora_fetch_timeout_s: float = 600.0  # time cap of that download
    storage_url: str = ""  # s3://bucket/prefix: downloaded LoRAs are shared there (lora_files.py)
    s3_endpoint_url: str = ""
    s3_region: str = ""
    # Partner tools (engines/partner.py): backends["flux-2-pro-t2i"] = auto | bfl | local[:<repo>] | off.
    bfl_poll_interval: float = 0.5  # first wait between polls of a BFL request, growing to the max
    bfl_poll_interval_max: float = 5.0
    bfl_max_wait: float = 900.0  # give up on a BFL request still Pending after this many seconds
    bfl_max_retries: int = 4  # per HTTP request, after 429 / 5xx / network errors
    bfl_retry_delay: float = 1.0  # first retry wait, doubled per retry

    @property
    def weights_dir(self) -> Path:
        return self.data_dir / "weights"


@dataclass
class EngineJob:
    """One task as an engine sees it.

    ``params`` holds the tool's inputs already coerced and validated by the catalog (ints, floats,
    bools, strings, lists), defaults filled in. ``images`` holds the task's image inputs, resolved by
    the API: each a stored file with its local ``path`` or a URL to fetch. ``workdir`` is a scratch
    folder owned by this task.
    """

    task_id: str
    tool: str
    params: dict[str, Any]
    images: dict[str, ImageRef] = field(default_factory=dict)
    workdir: Path | None = None
    should_stop: Callable[[], bool] | None = None
    """The task's kill flag, for preprocessing: downloads ask it as they stream and raise TaskKilled."""


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    content_type: str = "image/png"
    extension: str = "png"


@dataclass
class GenerationResult:
    images: list[GeneratedImage]
    debugoutput: str = ""  # e.g. which model actually ran, when a substitute was used


@dataclass
class BatchItem:
    """One task of a batched call: its job, its ``preprocess`` result and its own step callback."""

    job: EngineJob
    prepared: Any
    progress: StepCallback


Prepared = TypeVar("Prepared")
"""What an engine's ``preprocess`` hands its ``generate`` (fetched images, resolved adapters ...)."""


class Engine(abc.ABC, Generic[Prepared]):
    """One way of running a tool. Instances are long-lived and may be shared by worker threads."""

    def preprocess(self, job: EngineJob) -> Prepared:
        """Fetch inputs, resolve adapters; return what ``generate`` needs. May raise TaskFailure.

        The default prepares nothing (``None``): for engines whose inputs are all in ``job.params``.
        """
        return None  # type: ignore[return-value]

    @abc.abstractmethod
    def generate(self, job: EngineJob, prepared: Prepared, progress: StepCallback) -> GenerationResult:
        """Produce the task's images from ``preprocess``'s result. Calls ``progress`` each step;
        lets TaskKilled propagate."""

    def run(self, job: EngineJob, progress: StepCallback) -> GenerationResult:
        """``preprocess`` then ``generate``, for callers that need no status change in between."""
        return self.generate(job, self.preprocess(job), progress)

    def batch_signature(self, job: EngineJob, prepared: Prepared) -> Hashable | None:
        """What must be equal for tasks to share one ``generate_batch`` call (None: never batched).

        The store already grouped tasks by their catalog batch key; this is the engine's own check
        after ``preprocess`` (e.g. the LoRA files a URL resolved to), so a batch may split further.
        """
        return None

    def generate_batch(self, items: list[BatchItem]) -> list[GenerationResult | TaskKilled]:
        """Run several tasks with equal ``batch_signature`` in one pipeline call; results in order.

        Each item has its own step callback. When one raises TaskKilled, that item leaves the batch
        (its result is the TaskKilled) and the others go on; when every item is killed the call
        ends early. A failure of the whole call is raised (TaskFailure).
        """
        raise NotImplementedError(f"{type(self).__name__} does not batch")

    def unavailable_reason(self) -> str | None:
        """Why this engine cannot run here at all (e.g. no API key configured), or None."""
        return None
