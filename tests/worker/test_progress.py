"""StepProgress: kill checks every step, throttled reports, speed measured from the first step."""

from __future__ import annotations

import pytest

from fluxserve.errors import TaskKilled
from fluxserve.worker import progress as progress_module
from fluxserve.worker.progress import StepProgress, ThrottledWrite


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def test_speed_ignores_the_time_before_the_first_step(clock: FakeClock) -> None:
    reports: list[dict[str, str]] = []
    step = StepProgress(lambda: False, reports.append, min_interval=0)
    clock.now += 30  # the model loads on the task's first use
    for index in range(1, 11):
        clock.now += 0.5
        step(index, 10)
    assert reports[0]["stepCurrent"] == "2"  # the first report needs two steps to know a speed
    last = reports[-1]
    assert (last["stepCurrent"], last["stepTotal"], last["percentage"]) == ("10", "10", "100")
    assert last["speed"] == "2.00" and last["elapsedTime"] == "5s" and last["remainingTime"] == "0s"
    middle = next(r for r in reports if r["stepCurrent"] == "6")
    assert middle["remainingTime"] == "2s"


def test_reports_are_throttled_but_the_last_step_is_always_reported(clock: FakeClock) -> None:
    reports: list[dict[str, str]] = []
    step = StepProgress(lambda: False, reports.append, min_interval=1.0)
    for index in range(1, 101):
        clock.now += 0.01
        step(index, 100)
    assert [r["stepCurrent"] for r in reports] == ["2", "100"]


def test_a_kill_raises_out_of_the_step(clock: FakeClock) -> None:
    killed = {"flag": False}
    step = StepProgress(lambda: killed["flag"], lambda _: None)
    step(1, 5)
    killed["flag"] = True
    with pytest.raises(TaskKilled, match="step 2/5"):
        step(2, 5)
    with pytest.raises(TaskKilled):
        step.check_killed()


def test_previews_every_n_steps_skip_the_last_and_build_nothing_otherwise() -> None:
    import numpy as np

    from fluxserve.engines.base import report_step
    from fluxserve.worker.progress import PreviewPolicy

    published, built = [], []

    def source():
        built.append(1)
        return np.zeros((8, 8, 3), dtype=np.uint8)

    progress = StepProgress(lambda: False, lambda message: None, preview=PreviewPolicy(2, published.append))
    for step in range(1, 7):
        report_step(progress, step, 6, source)
    assert [(p.step, p.total) for p in published] == [(2, 6), (4, 6)]  # not 6: the final image follows
    assert len(built) == 2 and published[0].data[:2] == b"\xff\xd8"  # a JPEG
    assert published[0].message()["type"] == "previewGenerate"


def test_a_requested_count_of_previews_is_spread_over_the_run() -> None:
    from fluxserve.tasks.records import PREVIEWS_INPUT
    from fluxserve.worker.progress import preview_policy

    policy = preview_policy({PREVIEWS_INPUT: 2}, 0, lambda preview: None)
    assert [step for step in range(1, 13) if policy.due(step, 12)] == [4, 8]
    assert preview_policy({}, 0, lambda preview: None) is None  # off unless asked or configured
    every = preview_policy({}, 5, lambda preview: None)
    assert [step for step in range(1, 13) if every.due(step, 12)] == [5, 10]


def test_plain_callables_still_work_as_step_callbacks() -> None:
    from fluxserve.engines.base import report_step

    seen = []
    report_step(lambda step, total: seen.append((step, total)), 1, 2, lambda: None)
    assert seen == [(1, 2)]


def test_progress_writes_to_the_store_are_throttled() -> None:
    """At most one write per interval; the first at once; a forced one (a preview) always."""
    clock = FakeClock()
    written: list[str] = []
    writes = ThrottledWrite(written.append, interval=1.0, clock=clock)
    assert writes.offer("step 1") is True
    clock.now += 0.25
    assert writes.offer("step 2") is False
    clock.now += 0.5
    assert writes.offer("step 3") is False
    assert writes.offer("preview", force=True) is True
    clock.now += 0.9
    assert writes.offer("step 4") is False  # 0.9 s after the forced write
    clock.now += 0.1
    assert writes.offer("step 5") is True
    assert written == ["step 1", "preview", "step 5"]


def test_twenty_fast_steps_cost_one_progress_write() -> None:
    """A 4-step task reporting every step within a second writes its progress line once."""
    clock = FakeClock()
    written: list[str] = []
    writes = ThrottledWrite(written.append, interval=1.0, clock=clock)
    for step in range(1, 21):
        writes.offer(f"step {step}")
        clock.now += 0.03
    assert written == ["step 1"]
