"""Models parse the seeds' example JSON (strings kept as sent, typed helpers on top)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fluxserve.client.live import parse_frame, socket_url_for
from fluxserve.client.models import Output, Progress, Task, TaskHandle, Tool, parse_progress_text

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seed_json(section: str) -> dict:
    """The JSON block that follows ``## <section>`` in the repository's copy of the Krea-dev seed."""
    text = (SEEDS / "black-forest-labs__FLUX.1-Krea-dev.txt").read_text(encoding="utf-8")
    match = re.search(re.escape(f"## {section}") + r"\s*```json\s*(.*?)```", text, re.DOTALL)
    assert match, section
    # The seeds print the task's categories as a JSON list inside a string without escaping it.
    block = re.sub(
        r'"categories": "\[(.*?)\]"',
        lambda m: '"categories": ' + json.dumps(f"[{m.group(1)}]"),
        match.group(1),
    )
    return json.loads(block)


def test_run_response_parses_to_handle():
    handle = TaskHandle.from_wire(seed_json("Run Command - Response"))
    assert handle == TaskHandle(taskid="2221", socketaccesstoken="eDcCm5yyUfIvMFspTwww49OUfgXkQt")


def test_detail_response_parses_to_task():
    body = seed_json("Get Task Detail - Response")
    task = Task.from_wire(body["tasklist"][0])
    assert task.id == "2221"
    assert task.status == "task_postprocess_end"
    assert task.is_terminal and task.succeeded and not task.failed
    assert task.pexit == "0"  # absent in this example: no failure reported
    assert task.elapsed == 6.0
    assert task.outputs == [
        Output(
            id="6bc392c93856dfce3a7d1b4261e15af3",
            name="0.png",
            contenttype="image/png",
            size="202472",
            url="https://cdn1.wiro.ai/6a6af820-c5050aee-40bd7b83-a2e186c6-7f61f7da-3894e49c-fc0eeb66-9b500fe2/0.png",
        )
    ]
    assert task.outputs[0].size_bytes == 202472
    assert task.handle.socketaccesstoken == "eDcCm5yyUfIvMFspTwww49OUfgXkQt"


def test_kill_response_keeps_unnamed_fields_in_raw():
    task = Task.from_wire(seed_json("Kill Task - Response")["tasklist"][0])
    assert task.cancelled and task.is_terminal and not task.succeeded
    assert task.parameters["inputImage"].endswith("inputImage-6060136.png")
    assert task.raw["cps"] == "0.000585000000"
    assert task.raw["guestid"] is None


def test_failed_task_is_recognised():
    task = Task.from_wire({"id": "7", "status": "task_postprocess_end", "pexit": "1", "debugerror": "boom"})
    assert task.failed and not task.succeeded


def test_tool_parses_inputs_and_options():
    tool = Tool.from_wire(
        {
            "slugowner": "black-forest-labs",
            "slugproject": "flux-pro-1-1-ultra",
            "title": "FLUX Pro Ultra",
            "categories": ["tool", "bfl"],
            "inputs": [
                {
                    "name": "aspectRatio",
                    "label": "Aspect Ratio",
                    "help": "",
                    "type": "select",
                    "default": "16:9",
                    "options": [{"value": "1:1", "label": "1:1"}, {"value": "16:9", "label": "16:9"}],
                },
                {"name": "seed", "label": "seed", "help": "seed-help", "type": "text", "default": 42},
            ],
        }
    )
    assert tool.name == "black-forest-labs/flux-pro-1-1-ultra"
    assert tool.input("aspectRatio").option_values == ["1:1", "16:9"]
    assert tool.input("seed").default == 42 and tool.input("seed").options == []
    assert tool.input("missing") is None


def test_progress_from_generate_message_strings():
    progress = Progress.from_generate(
        "task_start",
        {
            "type": "progressGenerate",
            "percentage": "60",
            "stepCurrent": "6",
            "stepTotal": "10",
            "speed": "1.2",
            "speedType": "it/s",
            "elapsedTime": "5s",
            "remainingTime": "3s",
        },
    )
    assert (progress.step, progress.total, progress.percentage, progress.speed) == (6, 10, 60.0, 1.2)
    assert progress.speed_type == "it/s" and progress.remaining == "3s" and progress.has_steps


@pytest.mark.parametrize(
    ("text", "step", "total", "speed"),
    [
        ('{"type": "progressGenerate", "stepCurrent": "3", "stepTotal": "4", "speed": "2.5"}', 3, 4, 2.5),
        ("50%|#####     | 5/10 [00:02<00:02,  2.31it/s]", 5, 10, 2.31),
        ("older line\nstep 2/8", 2, 8, None),
    ],
)
def test_progress_from_debugoutput(text, step, total, speed):
    progress = parse_progress_text("task_start", text)
    assert progress is not None
    assert (progress.step, progress.total, progress.speed) == (step, total, speed)


def test_progress_from_unrelated_debugoutput_is_none():
    assert parse_progress_text("task_start", "") is None
    assert parse_progress_text("task_start", "loading weights") is None


def test_socket_urls():
    assert socket_url_for("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/v1"
    assert socket_url_for("https://flux.example.com") == "wss://flux.example.com/v1"
    assert socket_url_for("https://api.wiro.ai") == "wss://socket.wiro.ai/v1"


def test_frames():
    status = parse_frame('{"type": "task_start", "id": "1", "tasktoken": "t", "message": "", "result": true}')
    assert status.status == "task_start" and status.progress is None and status.ok
    inner = json.dumps({"type": "progressGenerate", "stepCurrent": "2"})
    progress = parse_frame(json.dumps({"type": "task_output", "message": inner}))
    assert progress.status is None and progress.progress["stepCurrent"] == "2"
    log = parse_frame('{"type": "task_output", "message": "loading weights"}')
    assert log.status is None and log.progress is None
    refused = parse_frame('{"type": "error", "message": "unknown token", "result": false}')
    assert not refused.ok
    assert parse_frame("not json") is None and parse_frame("[1]") is None


def test_tool_parses_wiros_documented_shape():
    """models.md's Tool/Detail example (tests/fixtures/wiro_docs): name from the clean slugs, inputs
    from every parameters group, cover from ``image``."""
    from tests.support.wiro_docs import doc

    example = doc("models_tool_detail")["example"]["tool"][0]
    tool = Tool.from_wire(example)
    assert tool.name == "google/nano-banana"
    assert tool.cover == example["image"]
    assert [(item.name, item.type, item.required) for item in tool.inputs] == [
        ("inputImage", "combinefileinput", False),
        ("prompt", "textarea", True),
    ]


def test_a_range_of_whole_numbers_is_checked_and_sent_as_an_integer():
    from fluxserve.client.errors import ValidationFailed
    from fluxserve.client.inputs import prepare_run, spec_from_tool

    tool = Tool.from_wire(
        {
            "cleanslugowner": "someone",
            "cleanslugproject": "model",
            "parameters": [
                {
                    "title": "",
                    "items": [
                        {"id": "steps", "type": "range", "min": 1, "max": 50, "step": 1, "default": "20"},
                        {"id": "inputImage", "type": "fileinput", "required": True},
                    ],
                }
            ],
        }
    )
    spec = spec_from_tool(tool)
    assert [(item.name, item.rules.kind) for item in spec.inputs] == [
        ("steps", "integer"),
        ("inputImage", "image"),
    ]
    assert spec.inputs[1].rules.file_field == "inputImage"
    payload = prepare_run(spec, {"steps": 7, "inputImage": "https://example.com/a.png"}, full_rules=False)
    assert payload.fields == {"steps": "7", "inputImage": "https://example.com/a.png"}
    with pytest.raises(ValidationFailed):
        prepare_run(spec, {"steps": 70}, full_rules=False)
