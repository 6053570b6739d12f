"""The step callback handed to engines: kill check every step, throttled progress reporting."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fluxserve.errors import TaskKilled
from fluxserve.wire import progress_line


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
    ) -> None:
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

    def check_killed(self) -> None:
        if self._is_killed():
            raise TaskKilled("killed before generation started")


def _elapsed(step: int, first_step: int, since_first: float) -> float:
    """Time for ``step`` steps, extrapolating the first step's duration from the later ones."""
    if step <= first_step or since_first <= 0:
        return since_first
    return since_first * step / (step - first_step)


def progress_text(message: dict[str, str]) -> str:
    """The progress line kept in a running task's debugoutput (a JSON object on one line)."""
    return json.dumps(message, separators=(",", ":"))
