"""The FLUX.1-dev LoRA engine on tiny weights and tiny catalog LoRAs (engine level, no HTTP)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from safetensors.torch import save_file

from fluxserve.catalog import Catalog
from fluxserve.catalog.lora import load_lora_catalog
from fluxserve.catalog.request import validate_request
from fluxserve.engines.base import EngineConfig, EngineJob
from fluxserve.engines.flux_lora import FluxLoraEngine
from fluxserve.engines.lora_files import load_checked_lora
from fluxserve.engines.registry import EngineRegistry
from fluxserve.engines.tiny import tiny_lora_state_dict
from fluxserve.errors import InputFetchError, TaskFailure, ValidationError

TOOL = "wiro/text-to-image-flux-lora-fast"
POSTER, PENCIL, COMIC = "678", "1239", "1236"


def _job(**overrides) -> EngineJob:
    """A job with the values the catalog validated from a request (as the worker hands them on)."""
    raw = {"prompt": "a lion under the stars", "steps": 2, "scale": 3.5, "seed": 5, "width": 64, "height": 64}
    raw.update(overrides)
    params = validate_request(Catalog.builtin().get(TOOL), raw).values
    return EngineJob(task_id="t", tool=TOOL, params=params)


def _run(engine: FluxLoraEngine, **overrides) -> bytes:
    return engine.run(_job(**overrides), lambda step, total: None).images[0].data


@pytest.fixture
def registry(tiny_config: EngineConfig) -> EngineRegistry:
    return EngineRegistry(tiny_config)


@pytest.fixture
def engine(registry: EngineRegistry) -> FluxLoraEngine:
    built = registry.get("flux1-dev-lora")
    assert isinstance(built, FluxLoraEngine)
    return built


class _Files(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    hits: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[tuple[str, type[_Files]]]:
    handler = type("Handler", (_Files,), {"files": {}, "hits": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _lora_bytes(tmp_path: Path, state: dict, name: str = "lora.safetensors") -> bytes:
    path = tmp_path / name
    save_file(state, str(path))
    return path.read_bytes()


def test_every_catalog_lora_has_a_tiny_file_that_fits_the_transformer(tiny_weights_dir: Path, engine) -> None:
    with engine.home.use("black-forest-labs/FLUX.1-dev") as pipe:
        for entry in load_lora_catalog():
            path = tiny_weights_dir / entry.repo / entry.weight_name
            checked = load_checked_lora(path, pipe.transformer, entry.id)
            assert len(checked.state_dict) >= 20
            assert all(tensor.abs().sum() > 0 for tensor in checked.state_dict.values())


def test_catalog_lora_changes_the_image_and_scale_zero_equals_base(engine: FluxLoraEngine) -> None:
    base = _run(engine)
    poster = _run(engine, selectedLoraModel=[POSTER], prompt="FRESH IDEAS Movie poster style, a lion")
    poster_base = _run(engine, prompt="FRESH IDEAS Movie poster style, a lion")
    assert poster != poster_base
    zero = _run(
        engine,
        selectedLoraModel=[POSTER],
        **{"Movie-poster-style-LoRA-Flux-v1.0": 0.0},
        prompt="FRESH IDEAS Movie poster style, a lion",
    )
    assert zero == poster_base
    half = _run(
        engine,
        selectedLoraModel=[POSTER],
        **{"Movie-poster-style-LoRA-Flux-v1.0": "0.5"},
        prompt="FRESH IDEAS Movie poster style, a lion",
    )
    assert half not in (poster, poster_base)
    assert base != poster_base  # sanity: the prompt matters too


def test_two_loras_combine(engine: FluxLoraEngine) -> None:
    prompt = "w1z_dreamy_vista style illustration, vintage comic book cover, 1950s pulp art style, a lion"
    pencil = _run(engine, selectedLoraModel=[PENCIL], prompt=prompt)
    comic = _run(engine, selectedLoraModel=[COMIC], prompt=prompt)
    both = _run(engine, selectedLoraModel=[PENCIL, COMIC], prompt=prompt)
    assert len({pencil, comic, both}) == 3
    assert sorted(engine.adapters.loaded) == ["catalog-1236", "catalog-1239"]


def test_trigger_words_are_prepended_unless_present(engine: FluxLoraEngine) -> None:
    job = _job(selectedLoraModel=[COMIC, POSTER], prompt="a lion, Vintage Comic Book Cover")
    prepared = engine.preprocess(job)
    assert (
        prepared.prompt
        == "1950s pulp art style, FRESH IDEAS Movie poster style, a lion, Vintage Comic Book Cover"
    )
    result = engine.generate(job, prepared, lambda step, total: None)
    assert "1950s pulp art style, FRESH IDEAS" in result.debugoutput
    explicit = _run(engine, selectedLoraModel=[POSTER], prompt="FRESH IDEAS Movie poster style, a lion")
    implicit = _run(engine, selectedLoraModel=[POSTER], prompt="a lion")
    assert explicit == implicit  # the trigger words were put in front


def test_base_tasks_never_see_a_previous_tasks_adapters(registry: EngineRegistry, engine) -> None:
    krea = registry.get("flux1-krea-dev")
    base_before = _run(engine)
    krea_before = krea.run(_job(), lambda s, t: None).images[0].data
    _run(engine, selectedLoraModel=[POSTER, PENCIL])
    assert _run(engine) == base_before
    assert krea.run(_job(), lambda s, t: None).images[0].data == krea_before  # other pipelines untouched
    _run(engine, selectedLoraModel=[POSTER])
    with engine.home.use("black-forest-labs/FLUX.1-dev") as pipe:  # e.g. ultra's local stand-in
        plain = pipe(
            "a lion under the stars",
            num_inference_steps=2,
            width=64,
            height=64,
            output_type="np",
            generator=torch.Generator().manual_seed(5),
        ).images
    with engine.home.use("black-forest-labs/FLUX.1-dev") as pipe:
        engine.adapters.activate(pipe, [])
        again = pipe(
            "a lion under the stars",
            num_inference_steps=2,
            width=64,
            height=64,
            output_type="np",
            generator=torch.Generator().manual_seed(5),
        ).images
    assert (plain == again).all()  # other users of the FLUX.1-dev pipeline get it without adapters
    only_pencil_fresh = _run(engine, selectedLoraModel=[PENCIL])
    _run(engine, selectedLoraModel=[POSTER])
    assert _run(engine, selectedLoraModel=[PENCIL]) == only_pencil_fresh  # poster not left active


def test_adapters_stay_loaded_with_an_lru_bound(tiny_config: EngineConfig, monkeypatch) -> None:
    from fluxserve.engines import flux_lora

    engine = EngineRegistry(replace(tiny_config, max_loaded_loras=2)).get("flux1-dev-lora")
    loads: list[str] = []
    real = flux_lora.load_checked_lora
    monkeypatch.setattr(
        flux_lora, "load_checked_lora", lambda path, t, what: loads.append(what) or real(path, t, what)
    )
    first = _run(engine, selectedLoraModel=[POSTER])
    _run(engine, selectedLoraModel=[PENCIL])
    assert _run(engine, selectedLoraModel=[POSTER]) == first
    assert len(loads) == 2  # switching back was set_adapters, not a reload
    _run(engine, selectedLoraModel=[COMIC])
    assert engine.adapters.loaded == ["catalog-678", "catalog-1236"]  # 1239 was least recently used
    with engine.home.use("black-forest-labs/FLUX.1-dev") as pipe:
        names = {n for ns in pipe.get_list_adapters().values() for n in ns}
    assert names == {"catalog-678", "catalog-1236"}
    assert _run(engine, selectedLoraModel=[PENCIL]) != first
    assert len(loads) == 4


def test_unknown_lora_id_fails_listing_the_valid_ids() -> None:
    """The catalog refuses it before any task exists; the engine never re-checks the selection."""
    with pytest.raises(ValidationError) as caught:
        _job(selectedLoraModel=["655"])
    message = str(caught.value)
    assert "'655'" in message
    for entry in load_lora_catalog():
        assert entry.id in message


def test_scale_out_of_range_fails_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="WPAP-ART-Style"):
        _job(selectedLoraModel=["1328"], **{"WPAP-ART-Style": "1.5"})


def test_private_url_lora_is_downloaded_once_and_applied(tiny_config, file_server, tmp_path) -> None:
    base_url, handler = file_server
    handler.files["/my.safetensors"] = _lora_bytes(tmp_path, tiny_lora_state_dict(seed=999))
    handler.files["/same-bytes.safetensors"] = handler.files["/my.safetensors"]
    engine = EngineRegistry(replace(tiny_config, allow_private_urls=True)).get("flux1-dev-lora")
    base = _run(engine)
    mine = _run(engine, selectedLoraModelPrivateUrl=f"{base_url}/my.safetensors")
    assert mine != base
    assert _run(engine, selectedLoraModelPrivateUrl=f"{base_url}/my.safetensors") == mine
    assert handler.hits["/my.safetensors"] == 1  # cached after the first download
    assert _run(engine, selectedLoraModelPrivateUrl=f"{base_url}/same-bytes.safetensors") == mine
    cached = list((tiny_config.data_dir / "loras").glob("*.safetensors"))
    assert len(cached) == 1  # keyed by content hash
    combined = _run(
        engine, selectedLoraModel=[POSTER], selectedLoraModelPrivateUrl=f"{base_url}/my.safetensors"
    )
    assert combined != mine


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pickle.ckpt", "not a .safetensors file"),
        ("wrong-shapes.safetensors", "does not fit the FLUX.1-dev transformer"),
        ("missing.safetensors", "404"),
        ("big.safetensors", "selectedLoraModelPrivateUrl"),
    ],
)
def test_bad_private_loras_fail_clearly(tiny_config, file_server, tmp_path, name: str, expected: str) -> None:
    base_url, handler = file_server
    handler.files["/pickle.ckpt"] = b"\x80\x04\x95" + b"\x00" * 200  # a pickle header
    wrong = {
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.ones(4, 48),
        "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": torch.ones(32, 4),
    }
    handler.files["/wrong-shapes.safetensors"] = _lora_bytes(tmp_path, wrong, "wrong.safetensors")
    handler.files["/big.safetensors"] = b"\x00" * 5000
    config = replace(tiny_config, allow_private_urls=True, max_lora_bytes=4096)
    engine = EngineRegistry(config).get("flux1-dev-lora")
    with pytest.raises(TaskFailure) as caught:
        _run(engine, selectedLoraModelPrivateUrl=f"{base_url}/{name}")
    assert expected in str(caught.value)
    assert "selectedLoraModelPrivateUrl" in str(caught.value)
    assert engine.adapters.loaded == []
    if name != "wrong-shapes.safetensors":  # a well-formed safetensors file stays cached; others never
        assert list((config.data_dir / "loras").glob("*.safetensors")) == []


def test_loopback_lora_url_is_refused_unless_private_urls_are_allowed(engine, file_server, tmp_path) -> None:
    base_url, handler = file_server
    handler.files["/my.safetensors"] = _lora_bytes(tmp_path, tiny_lora_state_dict(seed=1))
    with pytest.raises(InputFetchError, match="selectedLoraModelPrivateUrl"):
        _run(engine, selectedLoraModelPrivateUrl=f"{base_url}/my.safetensors")
    assert handler.hits == {}
