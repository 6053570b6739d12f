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
        self._started = time.monotonic()
        self._last_report = 0.0
        self.step = 0
        self.total = 0

    def __call__(self, step: int, total: int) -> None:
        self.step, self.total = step, total
        if self._is_killed():
            raise TaskKilled(f"killed at step {step}/{total}")
        now = time.monotonic()
        if step >= total or now - self._last_report >= self._min_interval:
            self._last_report = now
            self._report(progress_line(step, total, now - self._started))

    def check_killed(self) -> None:
        if self._is_killed():
            raise TaskKilled("killed before generation started")


def progress_text(message: dict[str, str]) -> str:
    """The progress line kept in a running task's debugoutput (a JSON object on one line)."""
    return json.dumps(message, separators=(",", ":"))
