"""The partner tools run through Black Forest Labs' API: tool inputs -> BFL's fields -> one image.

``job.params`` arrives typed by the catalog (``promptUpsampling`` a bool, ``seed`` an int ...);
this module maps the names to BFL's and checks the ranges BFL enforces once more, so nothing
invalid is ever sent (and billed).
"""

from __future__ import annotations

import logging
from typing import Any

from fluxserve.engines.base import (
    Engine,
    EngineConfig,
    EngineJob,
    GeneratedImage,
    GenerationResult,
    StepCallback,
)
from fluxserve.engines.bfl import BflClient, BflOptions
from fluxserve.engines.partner import FLUX2_PRO_ENGINE, ULTRA_ENGINE, PartnerTool
from fluxserve.errors import TaskFailure

log = logging.getLogger(__name__)

ULTRA_ASPECT_RATIOS = (
    "1:1",
    "16:9",
    "9:16",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "4:5",
    "5:4",
    "21:9",
    "9:21",
    "2:1",
    "1:2",
)
OUTPUT_FORMATS = ("jpeg", "png")
EXPECTED_POLLS = 20
"""A typical number of polls before Ready; only shapes the progress reported between polls."""


def ultra_payload(params: dict[str, Any]) -> dict[str, Any]:
    """flux-pro-1-1-ultra inputs -> the body of ``POST /v1/flux-pro-1.1-ultra``."""
    aspect_ratio = str(params.get("aspectRatio", "16:9"))
    if aspect_ratio not in ULTRA_ASPECT_RATIOS:
        raise TaskFailure(
            f"aspectRatio: must be one of {', '.join(ULTRA_ASPECT_RATIOS)}, got {aspect_ratio!r}"
        )
    return {
        "prompt": str(params.get("prompt", "")),
        "prompt_upsampling": bool(params.get("promptUpsampling", False)),
        "safety_tolerance": _int_in(params, "safetyTolerance", 2, 0, 6),
        "aspect_ratio": aspect_ratio,
        "seed": _int_in(params, "seed", 42, 0, None),
        "output_format": _output_format(params),
    }


def flux2_pro_payload(params: dict[str, Any]) -> dict[str, Any]:
    """flux-2-pro-t2i inputs -> the body of ``POST /v1/flux-2-pro``."""
    payload = {
        "prompt": str(params.get("prompt", "")),
        "width": _dimension(params, "width"),
        "height": _dimension(params, "height"),
        "safety_tolerance": _int_in(params, "safetyTolerance", 2, 0, 5),
        "seed": _int_in(params, "seed", 123, 0, None),
        "output_format": _output_format(params),
    }
    return payload


PAYLOADS = {ULTRA_ENGINE: ultra_payload, FLUX2_PRO_ENGINE: flux2_pro_payload}


def _int_in(params: dict[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskFailure(f"{name}: must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        raise TaskFailure(
            f"{name}: must be between {low} and {high if high is not None else 'any'}, got {value}"
        )
    return value


def _dimension(params: dict[str, Any], name: str) -> int:
    value = _int_in(params, name, 1024, 64, 2048)
    if value % 16:
        raise TaskFailure(f"{name}: must be a multiple of 16 between 64 and 2048, got {value}")
    return value


def _output_format(params: dict[str, Any]) -> str:
    value = str(params.get("outputFormat", "png"))
    if value not in OUTPUT_FORMATS:
        raise TaskFailure(f"outputFormat: must be 'jpeg' or 'png', got {value!r}")
    return value


class BflEngine(Engine):
    """One partner tool through BFL's API. Holds an httpx client; safe to share between threads."""

    def __init__(self, tool: PartnerTool, client: BflClient) -> None:
        self.tool = tool
        self.client = client

    @classmethod
    def from_config(cls, config: EngineConfig, tool: PartnerTool) -> BflEngine:
        options = BflOptions(
            api_key=config.bfl_api_key,
            base_url=config.bfl_url,
            poll_interval=config.bfl_poll_interval,
            poll_interval_max=max(config.bfl_poll_interval, config.bfl_poll_interval_max),
            max_wait=config.bfl_max_wait,
            max_retries=config.bfl_max_retries,
            retry_delay=config.bfl_retry_delay,
        )
        return cls(tool, BflClient(options))

    def preprocess(self, job: EngineJob) -> None:
        job.prepared["bfl_payload"] = PAYLOADS[self.tool.engine](job.params)

    def generate(self, job: EngineJob, progress: StepCallback) -> GenerationResult:
        payload = job.prepared.get("bfl_payload") or PAYLOADS[self.tool.engine](job.params)

        def on_poll(polls: int, bfl_progress: float | None) -> None:
            # BFL may report progress in [0, 1]; otherwise show polls against a typical count.
            if bfl_progress is not None and 0 <= bfl_progress <= 1:
                progress(max(1, round(bfl_progress * 100)), 100)
            else:
                progress(polls, max(EXPECTED_POLLS, polls + 1))

        image = self.client.generate(self.tool.bfl_endpoint, payload, on_poll)
        log.info("task %s: BFL %s request %s done", job.task_id, self.tool.bfl_model, image.request_id)
        return GenerationResult(
            images=[
                GeneratedImage(data=image.data, content_type=image.content_type, extension=image.extension)
            ],
            debugoutput=f"BFL {self.tool.bfl_model}, request id {image.request_id}",
        )
