"""The partner tools' engines: field mapping, backend choice, BFL runs, and ultra's local stand-in."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_bfl import FakeBfl
from PIL import Image

from fluxserve.catalog import Catalog
from fluxserve.catalog.coerce import validate_inputs
from fluxserve.engines.base import EngineConfig, EngineJob
from fluxserve.engines.bfl_engine import BflEngine
from fluxserve.engines.flux2_pro import flux2_pro_payload
from fluxserve.engines.flux_pro_ultra import ultra_payload
from fluxserve.engines.registry import EngineRegistry
from fluxserve.engines.ultra_local import UltraLocalEngine, ultra_size
from fluxserve.errors import TaskFailure, TaskKilled, ValidationError

ULTRA = "black-forest-labs/flux-pro-1-1-ultra"
FLUX2 = "black-forest-labs/flux-2-pro-t2i"
# The seeds' Run bodies, as a client sends them (strings for ultra, numbers for flux-2-pro-t2i).
ULTRA_SEED_BODY = {
    "prompt": "A quiet, sun-drenched Los Angeles street.",
    "promptUpsampling": "false",
    "safetyTolerance": "2",
    "aspectRatio": "16:9",
    "seed": "42",
    "outputFormat": "png",
}
FLUX2_SEED_BODY = {
    "prompt": "",
    "width": 1024,
    "height": 1024,
    "safetyTolerance": 2,
    "seed": 123,
    "outputFormat": "png",
}


def typed(tool: str, body: dict) -> dict:
    """What the worker hands the engine: the catalog's coerced values."""
    return validate_inputs(Catalog.builtin().get(tool), body).values


@pytest.fixture
def fake() -> Iterator[FakeBfl]:
    server = FakeBfl().start()
    yield server
    server.stop()


def bfl_config(tmp_path: Path, fake: FakeBfl, **extra) -> EngineConfig:
    return EngineConfig(
        data_dir=tmp_path,
        bfl_api_key=fake.api_key,
        bfl_url=fake.base_url,
        bfl_poll_interval=0.01,
        bfl_poll_interval_max=0.02,
        bfl_retry_delay=0.01,
        bfl_max_retries=1,
        **extra,
    )


# --- field mapping ---------------------------------------------------------------------------------


def test_ultra_fields_map_to_bfl_names_and_json_types() -> None:
    payload = ultra_payload(typed(ULTRA, ULTRA_SEED_BODY))
    assert payload == {
        "prompt": "A quiet, sun-drenched Los Angeles street.",
        "prompt_upsampling": False,
        "safety_tolerance": 2,
        "aspect_ratio": "16:9",
        "seed": 42,
        "output_format": "png",
    }
    upsampled = ultra_payload(typed(ULTRA, {**ULTRA_SEED_BODY, "promptUpsampling": "true"}))
    assert upsampled["prompt_upsampling"] is True


def test_flux2_fields_map_to_bfl_names_and_json_types() -> None:
    payload = flux2_pro_payload(typed(FLUX2, {**FLUX2_SEED_BODY, "width": "1536", "outputFormat": "jpeg"}))
    assert payload == {
        "prompt": "",
        "width": 1536,
        "height": 1024,
        "safety_tolerance": 2,
        "seed": 123,
        "output_format": "jpeg",
    }
    assert all(type(payload[k]) is int for k in ("width", "height", "safety_tolerance", "seed"))


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"width": 1000}, "width", "multiple of 16"),
        ({"height": "1030"}, "height", "multiple of 16"),
        ({"width": 32}, "width", "between 64 and 2048"),
        ({"height": 4096}, "height", "between 64 and 2048"),
        ({"safetyTolerance": 6}, "safetyTolerance", "between 0 and 5"),
    ],
)
def test_flux2_catalog_refuses_bad_sizes_naming_the_field(fields: dict, field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        typed(FLUX2, {**FLUX2_SEED_BODY, **fields})
    assert any(e.field == field and fragment in e.message for e in info.value.errors), info.value.errors


# --- backend choice --------------------------------------------------------------------------------


def test_no_key_no_backend_is_unavailable_with_instructions(tmp_path: Path) -> None:
    registry = EngineRegistry(EngineConfig(data_dir=tmp_path))
    flux2 = registry.unavailable_reason("bfl-flux-2-pro")
    ultra = registry.unavailable_reason("bfl-flux-pro-1.1-ultra")
    assert flux2 and "BFL_API_KEY" in flux2 and "FLUXSERVE_BACKEND_FLUX_2_PRO_T2I=local" in flux2
    assert ultra and "BFL_API_KEY" in ultra and "FLUXSERVE_BACKEND_FLUX_PRO_1_1_ULTRA=local" in ultra


@pytest.mark.parametrize(
    ("backends", "key", "expected"),
    [
        ({}, "k", None),
        ({"flux-2-pro-t2i": "bfl"}, "", "no BFL API key is set"),
        ({"FLUX_2_PRO_T2I": "off"}, "k", "switched off"),
        ({"flux-2-pro-t2i": "gpu"}, "k", "is not a backend"),
        ({"flux-2-pro-t2i": "local:black-forest-labs/FLUX.1-dev"}, "", "only run on a FLUX.2 model"),
        ({"flux-2-pro-t2i": "local:black-forest-labs/FLUX.2-klein-9B"}, "", "tiny test weights exist only"),
        ({"flux-2-pro-t2i": "local:black-forest-labs/FLUX.2-klein-4B"}, "", None),
        ({"flux-2-pro-t2i": "local"}, "", None),
    ],
)
def test_backend_settings(tmp_path: Path, backends: dict, key: str, expected: str | None) -> None:
    config = EngineConfig(data_dir=tmp_path, weights="tiny", bfl_api_key=key, backends=backends)
    reason = EngineRegistry(config).unavailable_reason("bfl-flux-2-pro")
    assert (reason is None) if expected is None else (expected in (reason or "")), reason


def test_the_availability_check_imports_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from fluxserve.engines.registry import EngineRegistry;"
        "from fluxserve.engines.base import EngineConfig;"
        "EngineRegistry(EngineConfig(data_dir=Path('.'))).unavailable_reason('bfl-flux-2-pro');"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- running through BFL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine_name", "tool", "body", "path"),
    [
        ("bfl-flux-pro-1.1-ultra", ULTRA, ULTRA_SEED_BODY, "/v1/flux-pro-1.1-ultra"),
        ("bfl-flux-2-pro", FLUX2, {**FLUX2_SEED_BODY, "outputFormat": "jpeg"}, "/v1/flux-2-pro"),
    ],
)
def test_bfl_engine_runs_a_task(tmp_path: Path, fake: FakeBfl, engine_name, tool, body, path) -> None:
    engine = EngineRegistry(bfl_config(tmp_path, fake)).get(engine_name)
    assert isinstance(engine, BflEngine)
    job = EngineJob(task_id="7", tool=tool, params=typed(tool, body))
    steps: list[tuple[int, int]] = []
    result = engine.generate(job, engine.preprocess(job), lambda step, total: steps.append((step, total)))
    fmt = body["outputFormat"]
    assert [(i.content_type, i.extension) for i in result.images] == [(f"image/{fmt}", fmt)]
    assert Image.open(io.BytesIO(result.images[0].data)).format == ("PNG" if fmt == "png" else "JPEG")
    assert result.debugoutput.startswith("BFL ") and "request id req-1" in result.debugoutput
    assert [r.path for r in fake.of("submit")] == [path]
    assert steps and all(1 <= s <= t for s, t in steps)


def test_kill_while_polling_stops_the_bfl_task(tmp_path: Path, fake: FakeBfl) -> None:
    fake.pending_polls = 10_000
    engine = EngineRegistry(bfl_config(tmp_path, fake)).get("bfl-flux-2-pro")
    job = EngineJob(task_id="8", tool=FLUX2, params=typed(FLUX2, FLUX2_SEED_BODY))
    calls: list[int] = []

    def progress(step: int, total: int) -> None:
        calls.append(step)
        if len(calls) == 3:
            raise TaskKilled("killed by user")

    with pytest.raises(TaskKilled):
        engine.run(job, progress)
    polls = len(fake.of("poll"))
    assert polls == 3
    assert fake.of("delivery") == []


def test_key_stays_out_of_debugoutput_errors_and_logs(
    tmp_path: Path, fake: FakeBfl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry = EngineRegistry(bfl_config(tmp_path, fake))
    job = EngineJob(task_id="9", tool=ULTRA, params=typed(ULTRA, ULTRA_SEED_BODY))
    result = registry.get("bfl-flux-pro-1.1-ultra").run(job, lambda s, t: None)
    fake.final_status = "Content Moderated"
    with pytest.raises(TaskFailure) as info:
        registry.get("bfl-flux-pro-1.1-ultra").run(job, lambda s, t: None)
    assert fake.api_key not in result.debugoutput
    assert fake.api_key not in str(info.value)
    assert fake.api_key not in caplog.text
    assert fake.api_key not in repr(registry.config)


# --- ultra's local stand-in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "size"),
    [("1:1", (2048, 2048)), ("16:9", (2736, 1536)), ("9:16", (1536, 2736)), ("21:9", (3136, 1344))],
)
def test_ultra_sizes_are_about_four_megapixels(ratio: str, size: tuple[int, int]) -> None:
    width, height = ultra_size(ratio)
    assert (width, height) == size
    assert width % 16 == 0 and height % 16 == 0
    assert abs(width * height / 2**22 - 1) < 0.03


def test_ultra_runs_locally_on_tiny_flux1(tiny_weights_dir: Path, tmp_path: Path) -> None:
    config = EngineConfig(
        data_dir=tmp_path,
        weights=str(tiny_weights_dir),
        device="cpu",
        backends={"flux-pro-1-1-ultra": "local"},
    )
    registry = EngineRegistry(config)
    assert registry.unavailable_reason("bfl-flux-pro-1.1-ultra") is None
    engine = registry.get("bfl-flux-pro-1.1-ultra")
    assert isinstance(engine, UltraLocalEngine)
    params = typed(ULTRA, {**ULTRA_SEED_BODY, "aspectRatio": "21:9", "outputFormat": "jpeg"})
    job = EngineJob(task_id="10", tool=ULTRA, params=params)
    first = engine.run(job, lambda s, t: None)
    again = engine.run(job, lambda s, t: None)
    image = Image.open(io.BytesIO(first.images[0].data))
    assert image.format == "JPEG" and first.images[0].extension == "jpeg"
    assert abs(image.width / image.height - 21 / 9) < 0.1
    assert (
        "ran locally on tiny test weights of black-forest-labs/FLUX.1-dev instead of flux-pro-1.1-ultra"
        in (first.debugoutput)
    )
    assert first.images[0].data == again.images[0].data  # same seed, same bytes
