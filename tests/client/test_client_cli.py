"""The command line against a real server: output, progress, saved files, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from fluxserve.client.cli import register

KREA = "black-forest-labs/FLUX.1-Krea-dev"
KONTEXT = "wiro/flux_kontext_dev_with_2_image"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def env(service) -> dict[str, str]:
    return {
        "FLUXSERVE_URL": service.base_url,
        "FLUXSERVE_API_KEY": service.api_key,
        "FLUXSERVE_API_SECRET": service.api_secret,
    }


def invoke(app: typer.Typer, env: dict[str, str], *args: str):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def fluxserve(env: dict[str, str], *args: str, tty: bool = False) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env, "COLUMNS": "120"}
    full_env.pop("TTY_COMPATIBLE", None)
    if tty:
        full_env["TTY_COMPATIBLE"] = "1"  # rich draws the live bar as on a terminal
    command = [sys.executable, "-m", "fluxserve.cli", *args]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300)


def test_run_saves_pngs_and_shows_the_progress_bar(env, tmp_path):
    out = tmp_path / "out"
    result = fluxserve(
        env, "run", KREA, "--prompt", "a lighthouse", "--set", "steps=40", "--set", "width=128",
        "--set", "height=128", "--set", "samples=2", "-o", str(out), tty=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.split()]
    assert len(paths) == 2 and all(path.parent == out for path in paths)
    for path in paths:
        assert Image.open(path).size == (128, 128)
    assert "started on black-forest-labs/FLUX.1-Krea-dev" in result.stderr
    assert "it/s" in result.stderr and "ETA" in result.stderr
    assert "done" in result.stderr
    assert (
        "80/80" in result.stderr or "40/40" in result.stderr
    )  # steps counted over both samples, or per image


def test_run_without_a_terminal_prints_plain_progress_lines(app, env, tmp_path):
    result = invoke(app, env, "run", KREA, "-p", "a tree", "-s", "steps=30", "-s", "width=64",
                    "-s", "height=64", "-o", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].endswith(f"started on {KREA}") and lines[-1].endswith(" done")
    assert all(line.startswith("task ") for line in lines)  # plain lines, no bar drawing
    [saved] = result.stdout.split()
    assert Path(saved).read_bytes().startswith(b"\x89PNG")


def test_run_uploads_local_images(app, env, tmp_path):
    first, second = tmp_path / "dog.png", tmp_path / "couch.png"
    Image.new("RGB", (64, 64), "green").save(first)
    Image.new("RGB", (64, 64), "blue").save(second)
    result = invoke(app, env, "run", KONTEXT, "-p", "the dog on the couch", "--image", str(first),
                    "--image2", str(second), "-s", "steps=2", "-o", str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_failed_task_is_one_line_with_the_debugerror(app, env, service, tmp_path):
    image = tmp_path / "dog.png"
    Image.new("RGB", (64, 64), "green").save(image)
    missing = f"{service.base_url}/no/such/image.png"
    result = invoke(app, env, "run", KONTEXT, "-p", "p", "--image", str(image), "--image2", missing,
                    "-s", "steps=1", "-o", str(tmp_path))  # fmt: skip
    assert result.exit_code == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "failed" in error and "inputImage2" in error
    assert "Traceback" not in result.output and not list(tmp_path.glob("*-0.png"))


def test_tools_tool_and_task_commands(app, env, service):
    tools = invoke(app, env, "tools")
    assert tools.exit_code == 0 and KREA in tools.stdout
    tool = invoke(app, env, "tool", "black-forest-labs/flux-pro-1-1-ultra")
    assert tool.exit_code == 0
    assert "aspectRatio" in tool.stdout and "16:9" in tool.stdout and "21:9" in tool.stdout
    started = invoke(app, env, "run", KREA, "-p", "x", "-s", "steps=1", "-s", "width=64", "-s", "height=64",
                     "--no-wait")  # fmt: skip
    assert started.exit_code == 0
    taskid = started.stdout.strip()
    service.wait(taskid)
    detail = invoke(app, env, "task", "detail", taskid)
    assert detail.exit_code == 0 and "task_postprocess_end" in detail.stdout and "0.png" in detail.stdout
    listed = invoke(app, env, "task", "list", "--limit", "50")
    assert listed.exit_code == 0 and taskid in listed.stdout
    as_json = invoke(app, env, "task", "detail", taskid, "--json")
    assert '"status": "task_postprocess_end"' in as_json.stdout
    cancel = invoke(app, env, "task", "cancel", taskid)
    assert cancel.exit_code == 1 and "already ended" in cancel.stderr


@pytest.mark.parametrize(
    ("args", "overrides", "words"),
    [
        (["tools"], {"FLUXSERVE_API_SECRET": "wrong"}, "Project authorization is not valid."),
        (["tools"], {"FLUXSERVE_API_KEY": ""}, "no API key"),
        (["tool", "nobody/nothing"], {}, "does not exist"),
        (["task", "detail", "987654"], {}, "task 987654: There is no task yet."),
        (["run", KREA, "-p", "x", "-s", "width=1000"], {}, "width"),
        (["run", KREA, "-p", "x", "-s", "nonsense"], {}, "key=value"),
        (["run", KREA, "-p", "x", "--image", "/no/such.png"], {}, "takes no input image"),
        (["run", "not-a-tool", "-p", "x"], {}, "owner/project"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(app, env, args, overrides, words):
    result = invoke(app, {**env, **overrides}, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_unreachable_server_is_one_line(app, tmp_path):
    env = {"FLUXSERVE_URL": "http://127.0.0.1:9", "FLUXSERVE_API_KEY": "k", "FLUXSERVE_API_SECRET": ""}
    result = fluxserve(env, "tools")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach") and "Traceback" not in result.stderr
