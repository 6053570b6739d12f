"""StepProgress: kill checks every step, throttled reports, speed measured from the first step."""

from __future__ import annotations

import pytest

from fluxserve.errors import TaskKilled
from fluxserve.worker import progress as progress_module
from fluxserve.worker.progress import StepProgress


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
