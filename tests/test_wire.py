"""wire.py: tasks, tools and errors in the seeds' JSON shapes (pure functions, no server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fluxserve.catalog import Catalog
from fluxserve.tasks.records import OutputRecord, TaskRecord
from fluxserve.tasks.status import TaskStatus
from fluxserve.wire import (
    error_body,
    file_url,
    ok_body,
    progress_line,
    seconds,
    task_to_wire,
)

SEED = Path(__file__).resolve().parent / "seeds" / "black-forest-labs__FLUX.1-Krea-dev.txt"
TIMES = [
    "createtime", "canceltime", "assigntime", "accepttime", "preprocessstarttime", "preprocessendtime",
    "starttime", "endtime", "postprocessstarttime", "postprocessendtime",
]  # fmt: skip


def seed_task(section: str) -> dict:
    text = SEED.read_text(encoding="utf-8")
    match = re.search(re.escape(f"## {section}") + r"\s*```json\s*(.*?)```", text, re.DOTALL)
    assert match
    block = re.sub(
        r'"categories": "\[(.*?)\]"',
        lambda m: '"categories": ' + json.dumps(f"[{m.group(1)}]"),
        match.group(1),
    )
    return json.loads(block)["tasklist"][0]


def record(**overrides) -> TaskRecord:
    times = dict.fromkeys(TIMES, 0.0)
    times.update(createtime=100.4, starttime=110.0, endtime=116.5)
    output = OutputRecord(
        id="o1", task_id=7, position=0, name="0.png", contenttype="image/png", size=1234, parentid="p",
        accesskey="KEY", storage_key="outputs/u/0.png", addedtime=115.0, modifiedtime=115.0,
    )  # fmt: skip
    values = dict(
        id=7, uuid="u", token="tok", project_id=1, tool="black-forest-labs/FLUX.1-Krea-dev",
        inputs={"seed": 42}, parameters={"seed": "42"}, files={}, status=TaskStatus.POSTPROCESS_END,
        debugoutput="", debugerror="", pexit="0", callbackurl="", times=times, attempts=1,
        kill_requested=False, worker_id="", lease_expires_at=0.0, callback_state="", callback_attempts=0,
        outputs=[output],
    )  # fmt: skip
    values.update(overrides)
    return TaskRecord(**values)


def test_task_has_every_field_of_the_seed_in_the_seed_order() -> None:
    tool = Catalog.builtin().get("black-forest-labs/FLUX.1-Krea-dev")
    wire = task_to_wire(record(), "http://h:1", tool)
    seed = seed_task("Kill Task - Response")
    assert list(wire) == [*seed, "modelslugowner", "modelslugproject", "modeldescription"]
    assert (wire["modelslugowner"], wire["modelslugproject"]) == ("black-forest-labs", "FLUX.1-Krea-dev")
    assert wire["modeldescription"] == tool.description
    assert list(wire["outputs"][0]) == list(seed["outputs"][0])


def test_task_scalars_are_strings_and_times_unix_seconds() -> None:
    wire = task_to_wire(record(), "http://h:1")
    assert wire["id"] == "7" and wire["projectid"] == "1" and wire["size"] == "1234"
    assert wire["createtime"] == "100" and wire["canceltime"] == "0"
    assert wire["elapsedseconds"] == "6.5000"
    assert wire["outputs"][0]["url"] == "http://h:1/v1/File/KEY/0.png"
    assert wire["outputs"][0]["size"] == "1234"
    assert wire["modelid"] == "0" and wire["categories"] == "[]"


def test_elapsed_is_zero_before_start() -> None:
    times = dict.fromkeys(TIMES, 0.0)
    assert task_to_wire(record(times=times, outputs=[]), "x")["elapsedseconds"] == "0.0000"


def test_seconds_and_file_url() -> None:
    assert seconds(0) == "0" and seconds(12.9) == "12"
    assert file_url("http://a", "k", "0.png") == "http://a/v1/File/k/0.png"


def test_error_and_ok_bodies() -> None:
    assert error_body([(0, "steps: bad")]) == {
        "result": False,
        "errors": [{"code": 0, "message": "steps: bad"}],
    }
    body = ok_body(taskid="1", socketaccesstoken="t")
    assert list(body) == ["errors", "taskid", "socketaccesstoken", "result"]


def test_progress_line_is_all_strings() -> None:
    line = progress_line(6, 10, 5.0)
    assert line == {
        "type": "progressGenerate", "task": "Generate", "percentage": "60", "stepCurrent": "6",
        "stepTotal": "10", "speed": "1.20", "speedType": "it/s", "elapsedTime": "5s", "remainingTime": "3s",
    }  # fmt: skip
    assert progress_line(0, 0, 0.0)["percentage"] == "0"
