"""The step callback handed to engines: kill check every step, throttled progress reporting,
and a latent preview every N steps when the task has previews on."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fluxserve.errors import TaskKilled
from fluxserve.wire import progress_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preview:
    """One encoded preview of a running task's latents."""

    step: int
    total: int
    data: bytes
    content_type: str = "image/jpeg"

    def message(self) -> dict[str, str]:
        """The ``task_preview`` frame's message (scalars as strings, like progressGenerate)."""
        return {
            "type": "previewGenerate",
            "step": str(self.step),
            "total": str(self.total),
            "contenttype": self.content_type,
            "image": base64.b64encode(self.data).decode("ascii"),
        }

    def data_url(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class PreviewPolicy:
    """Previews every ``every`` steps, or ``count`` previews spread evenly over the run (when
    ``every`` is 0), each sent to ``publish`` encoded as a small JPEG."""

    every: int
    publish: Callable[[Preview], None]
    count: int = 0
    quality: int = 70

    def due(self, step: int, total: int) -> bool:
        every = self.every or (max(1, total // (self.count + 1)) if self.count > 0 else 0)
        return every > 0 and step % every == 0 and step < total


class StepProgress:
    """Called as ``progress(step, total)`` by engines after each denoising step.

    Checks the task's kill flag on every step (one indexed read) and raises TaskKilled out of the
    pipeline when it is set. Progress is published at most every ``min_interval`` seconds (and
    always for the last step) so fast models do not flood subscribers or the database.

    Speed is measured from the first step on, not from the start of the task: a model that loads
    on the task's first use would otherwise show a crawl. The first report therefore waits for the
    second step (or the last, for one-step tasks), and elapsed time counts the first step as an
    average one.
    """

    def __init__(
        self,
        is_killed: Callable[[], bool],
        report: Callable[[dict[str, str]], None],
        min_interval: float = 0.25,
        preview: PreviewPolicy | None = None,
    ) -> None:
        self._preview = preview
        self._is_killed = is_killed
        self._report = report
        self._min_interval = min_interval
        self._first: tuple[int, float] | None = None  # (step, time) of the first callback
        self._last_report = 0.0
        self.step = 0
        self.total = 0

    def __call__(self, step: int, total: int) -> None:
        self.step, self.total = step, total
        if self._is_killed():
            raise TaskKilled(f"killed at step {step}/{total}")
        now = time.monotonic()
        if self._first is None:
            self._first = (step, now)
            if step < total:
                return
        first_step, first_time = self._first
        if step >= total or now - self._last_report >= self._min_interval:
            self._last_report = now
            self._report(progress_line(step, total, _elapsed(step, first_step, now - first_time)))

    def take_preview(self, step: int, total: int, source: Callable[[], Any]) -> None:
        """Engines hand over a lazy latent preview each step; every N-th is encoded and published.

        The last step is skipped: the final image follows at once. A failing preview is logged and
        never fails the task.
        """
        policy = self._preview
        if policy is None or not policy.due(step, total):
            return
        try:
            rgb = source()
            if rgb is None:
                return
            from fluxserve.engines.latent_preview import encode_preview

            size = (rgb.shape[1] * 8, rgb.shape[0] * 8)  # one preview pixel per 8x8 image pixels
            data = encode_preview(rgb, size, "jpeg", policy.quality)
        except TaskKilled:
            raise
        except Exception:
            log.warning("latent preview failed at step %d/%d", step, total, exc_info=True)
            return
        policy.publish(Preview(step, total, data))

    def check_killed(self) -> None:
        if self._is_killed():
            raise TaskKilled("killed before generation started")


class ThrottledWrite:
    """Keeps a running task's progress line in the store at most once every ``interval`` seconds.

    Every report still reaches the socket/SSE followers as an event at once (``StepProgress``'s own
    throttle); the row only serves Detail readers and the followers' fallback reads, which may lag a
    second. The first line is written at once; a line offered before ``interval`` has passed is
    dropped — the next due one replaces it, and the task's end overwrites debugoutput anyway, so a
    fast task's last progress line costs no write at all. ``force`` writes at once (a new preview:
    Detail shows it before its event goes out; previews have their own every-N-steps pace).
    """

    def __init__(
        self,
        write: Callable[[str], None],
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._interval = interval
        self._clock = clock
        self._last: float | None = None

    def offer(self, text: str, force: bool = False) -> bool:
        """Write ``text`` if a write is due (or ``force``); True when it was written."""
        now = self._clock()
        if not force and self._last is not None and now - self._last < self._interval:
            return False
        self._last = now
        self._write(text)
        return True


def _elapsed(step: int, first_step: int, since_first: float) -> float:
    """Time for ``step`` steps, extrapolating the first step's duration from the later ones."""
    if step <= first_step or since_first <= 0:
        return since_first
    return since_first * step / (step - first_step)


def progress_text(message: dict[str, str]) -> str:
    """The progress line kept in a running task's debugoutput (a JSON object on one line)."""
    return json.dumps(message, separators=(",", ":"))


def preview_policy(
    inputs: dict[str, Any], every: int, publish: Callable[[Preview], None]
) -> PreviewPolicy | None:
    """The task's previews: as many as it asked for (``PREVIEWS_INPUT``, e.g. OpenAI's
    ``partial_images``), else every ``every`` steps (``FLUXSERVE_PREVIEW_EVERY_STEPS``), else none."""
    from fluxserve.tasks.records import PREVIEWS_INPUT

    try:
        count = int(inputs.get(PREVIEWS_INPUT) or 0)
    except (TypeError, ValueError):
        count = 0
    if count > 0:
        return PreviewPolicy(0, publish, count=count)
    return PreviewPolicy(every, publish) if every > 0 else None
