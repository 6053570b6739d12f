"""The contract between the worker and every engine.

The worker builds an :class:`EngineJob` from a stored task, calls :meth:`Engine.preprocess`
(between task_preprocess_start and task_preprocess_end: fetch inputs, resolve adapters) and then
:meth:`Engine.generate` (task_start). ``generate`` calls ``progress(step, total)`` after every
denoising step (or every poll, for remote engines); that callback raises
:class:`fluxserve.errors.TaskKilled` when the task was killed, and engines must let it propagate.
Anything else that goes wrong is raised as :class:`fluxserve.errors.TaskFailure` with a message a
user can act on.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    backends: dict[str, str] = field(default_factory=dict)  # tool slug -> backend name
    max_loaded_loras: int = 8  # LoRA adapters kept loaded in the FLUX.1-dev transformer (LRU)
    max_lora_bytes: int = 2 * 2**30  # size cap of a LoRA downloaded from selectedLoraModelPrivateUrl
    lora_fetch_timeout_s: float = 600.0  # time cap of that download
    storage_url: str = ""  # s3://bucket/prefix: downloaded LoRAs are shared there (lora_files.py)
    s3_endpoint_url: str = ""
    s3_region: str = ""
    # Partner tools (engines/partner.py): backends["flux-2-pro-t2i"] = auto | bfl | local[:<repo>] | off
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
    bools, strings, lists), defaults filled in. ``files`` maps an input name to a local file that
    the client uploaded with the request. ``workdir`` is a scratch folder owned by this task.
    """

    task_id: str
    tool: str
    params: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    workdir: Path | None = None
    prepared: dict[str, Any] = field(default_factory=dict)  # filled by preprocess()
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


class Engine(abc.ABC):
    """One way of running a tool. Instances are long-lived and may be shared by worker threads."""

    def preprocess(self, job: EngineJob) -> None:  # noqa: B027 - optional hook
        """Fetch inputs, resolve adapters; store results in ``job.prepared``. May raise TaskFailure."""

    @abc.abstractmethod
    def generate(self, job: EngineJob, progress: StepCallback) -> GenerationResult:
        """Produce the task's images. Calls ``progress`` each step; lets TaskKilled propagate."""

    def unavailable_reason(self) -> str | None:
        """Why this engine cannot run here at all (e.g. no API key configured), or None."""
        return None
