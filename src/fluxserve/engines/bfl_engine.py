"""A partner tool run through Black Forest Labs' API: the tool's values -> BFL's fields -> one image.

``job.params`` arrives validated and typed by the catalog (``promptUpsampling`` a bool, ``seed`` an
int, sizes within BFL's bounds and multiples of 16 ...): the catalog's rules are BFL's, so nothing
invalid is ever sent (and billed), and nothing is checked here again. Each partner tool's module
gives its :class:`BflRoute`: the endpoint, BFL's model name and the field mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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

log = logging.getLogger(__name__)

EXPECTED_POLLS = 20
"""A typical number of polls before Ready; only shapes the progress reported between polls."""

Payload = dict[str, Any]


@dataclass(frozen=True)
class BflRoute:
    """Where a tool runs on BFL's API and how its validated values become the request body."""

    endpoint: str  # "/v1/flux-2-pro"
    model: str  # BFL's model name, for messages: "flux-2-pro"
    payload: Callable[[Mapping[str, Any]], Payload]


class BflEngine(Engine[Payload]):
    """One partner tool through BFL's API. Holds an httpx client; safe to share between threads."""

    def __init__(self, route: BflRoute, client: BflClient) -> None:
        self.route = route
        self.client = client

    @classmethod
    def from_config(cls, config: EngineConfig, route: BflRoute) -> BflEngine:
        options = BflOptions(
            api_key=config.bfl_api_key,
            base_url=config.bfl_url,
            poll_interval=config.bfl_poll_interval,
            poll_interval_max=max(config.bfl_poll_interval, config.bfl_poll_interval_max),
            max_wait=config.bfl_max_wait,
            max_retries=config.bfl_max_retries,
            retry_delay=config.bfl_retry_delay,
        )
        return cls(route, BflClient(options))

    def preprocess(self, job: EngineJob) -> Payload:
        """The request body BFL gets."""
        return self.route.payload(job.params)

    def generate(self, job: EngineJob, prepared: Payload, progress: StepCallback) -> GenerationResult:

        def on_poll(polls: int, bfl_progress: float | None) -> None:
            # BFL may report progress in [0, 1]; otherwise show polls against a typical count.
            if bfl_progress is not None and 0 <= bfl_progress <= 1:
                progress(max(1, round(bfl_progress * 100)), 100)
            else:
                progress(polls, max(EXPECTED_POLLS, polls + 1))

        image = self.client.generate(self.route.endpoint, prepared, on_poll)
        log.info("task %s: BFL %s request %s done", job.task_id, self.route.model, image.request_id)
        return GenerationResult(
            images=[
                GeneratedImage(data=image.data, content_type=image.content_type, extension=image.extension)
            ],
            debugoutput=f"BFL {self.route.model}, request id {image.request_id}",
        )
