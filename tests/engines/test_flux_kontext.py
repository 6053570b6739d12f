"""The two-image Kontext engine on tiny weights, through the shared model home."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fluxserve.catalog.images import ImageRef
from fluxserve.engines.base import EngineConfig, EngineJob, GenerationResult
from fluxserve.engines.registry import EngineRegistry
from fluxserve.engines.spec import engine_specs
from fluxserve.errors import InputFetchError, TaskKilled

STEPS = 2


class FileServer:
    """Serves ``files`` (path -> (bytes, content type)) on 127.0.0.1 and records the requests."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                if self.path not in outer.files:
                    self.send_error(404)
                    return
                data, content_type = outer.files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def png(width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def saved(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def make_job(tmp_path: Path, files: dict[str, Path] | None = None, **params: Any) -> EngineJob:
    """A job as the worker builds it: stored files (with their local path) win over URL values."""
    values = {"inputImageUrl": "", "inputImage2Url": "", "prompt": "put the dog on the couch"}
    values |= {"steps": STEPS, "scale": 2.5, "samples": 1, "seed": 7} | params
    images = {
        name: ImageRef(name, storage_key=f"uploads/{name}", path=path) for name, path in (files or {}).items()
    }
    for name in ("inputImageUrl", "inputImage2Url"):
        if name not in images and values[name]:
            images[name] = ImageRef(name, url=str(values[name]))
    return EngineJob(
        task_id="t1",
        tool="wiro/flux_kontext_dev_with_2_image",
        params=values,
        images=images,
        workdir=tmp_path / "work",
    )


def run(engine: Any, job: EngineJob, calls: list[tuple[int, int]] | None = None) -> GenerationResult:
    prepared = engine.preprocess(job)
    return engine.generate(
        job, prepared, lambda step, total: (calls if calls is not None else []).append((step, total))
    )


def pixels(result: GenerationResult, index: int = 0) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result.images[index].data)))


@pytest.fixture(scope="module")
def engine(tiny_weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = EngineConfig(
        data_dir=tmp_path_factory.mktemp("data"),
        weights=str(tiny_weights_dir),
        device="cpu",
        allow_private_urls=True,
    )
    return EngineRegistry(config).get("flux1-kontext-dev-2image")


def test_registered_under_catalog_engine_name() -> None:
    spec = engine_specs()["flux1-kontext-dev-2image"]
    assert spec.factory == "fluxserve.engines.flux_kontext:build_kontext_engine"
    assert [(repo.id, repo.pipeline) for repo in spec.repos] == [
        ("black-forest-labs/FLUX.1-Kontext-dev", "FluxKontextPipeline")
    ]


def test_both_images_change_the_result(engine: Any, tmp_path: Path) -> None:
    room, dog, cat, sofa = (saved(tmp_path, f"{i}.png", png(64, 64, i)) for i in range(4))

    def result(first: Path, second: Path) -> np.ndarray:
        return pixels(run(engine, make_job(tmp_path, {"inputImageUrl": first, "inputImage2Url": second})))

    base = result(room, dog)
    np.testing.assert_array_equal(base, result(room, dog))  # deterministic at a fixed seed
    assert not np.array_equal(base, result(room, cat)), "the second image had no effect"
    assert not np.array_equal(base, result(sofa, dog)), "the first image had no effect"


def test_uploaded_files_and_urls_give_the_same_result(
    engine: Any, server: FileServer, tmp_path: Path
) -> None:
    first, second = png(64, 64, 1), png(48, 64, 2)
    server.files = {"/room.png": (first, "image/png"), "/dog.png": (second, "image/png")}
    by_url = run(
        engine,
        make_job(tmp_path, inputImageUrl=server.url("/room.png"), inputImage2Url=server.url("/dog.png")),
    )
    assert sorted(server.requests) == ["/dog.png", "/room.png"]
    uploaded = {
        "inputImageUrl": saved(tmp_path, "a.png", first),
        "inputImage2Url": saved(tmp_path, "b.png", second),
    }
    # An uploaded file wins over a URL given for the same input: the bogus URL is never fetched.
    by_file = run(engine, make_job(tmp_path, uploaded, inputImageUrl=server.url("/gone.png")))
    assert by_url.images[0].data == by_file.images[0].data
    assert "/gone.png" not in server.requests


def test_url_to_something_that_is_not_an_image_fails_naming_the_input(
    engine: Any, server: FileServer, tmp_path: Path
) -> None:
    server.files = {"/room.png": (png(64, 64, 1), "image/png"), "/page": (b"<html>hello</html>", "text/html")}
    job = make_job(tmp_path, inputImageUrl=server.url("/room.png"), inputImage2Url=server.url("/page"))
    with pytest.raises(InputFetchError, match=r"^inputImage2Url: the content is not an image"):
        engine.preprocess(job)
    job = make_job(tmp_path, inputImageUrl=server.url("/missing.png"), inputImage2Url=server.url("/page"))
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: the server answered HTTP 404"):
        engine.preprocess(job)


def test_loopback_url_refused_when_private_urls_are_not_allowed(
    engine: Any, server: FileServer, tmp_path: Path
) -> None:
    strict = EngineRegistry(replace(engine.config, allow_private_urls=False)).get("flux1-kontext-dev-2image")
    server.files = {"/room.png": (png(64, 64, 1), "image/png")}
    job = make_job(tmp_path, inputImageUrl=server.url("/room.png"), inputImage2Url=server.url("/room.png"))
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: refusing to fetch .*127\.0\.0\.1"):
        strict.preprocess(job)
    assert server.requests == []


@pytest.mark.parametrize(
    ("first", "second"),
    [("", "http://example.invalid/dog.png"), ("https://example.invalid/room.png", "")],
)
def test_a_missing_image_fails_clearly(engine: Any, tmp_path: Path, first: str, second: str) -> None:
    missing = "inputImageUrl" if not first else "inputImage2Url"
    files = {"inputImageUrl": saved(tmp_path, "a.png", png(64, 64, 1))} if first else {}
    files |= {"inputImage2Url": saved(tmp_path, "b.png", png(64, 64, 2))} if second else {}
    with pytest.raises(InputFetchError, match=rf"^{missing}: no image was given; this tool needs two images"):
        engine.preprocess(make_job(tmp_path, files, inputImageUrl=first, inputImage2Url=second))


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [((96, 64), (64, 64), (96, 64)), ((64, 96), (96, 64), (64, 96)), ((100, 70), (64, 64), (96, 64))],
)
def test_output_size_follows_the_first_image(
    engine: Any, tmp_path: Path, first: tuple[int, int], second: tuple[int, int], expected: tuple[int, int]
) -> None:
    files = {
        "inputImageUrl": saved(tmp_path, "a.png", png(*first, 1)),
        "inputImage2Url": saved(tmp_path, "b.png", png(*second, 2)),
    }
    result = run(engine, make_job(tmp_path, files))
    assert Image.open(io.BytesIO(result.images[0].data)).size == expected
    assert result.images[0].content_type == "image/png"


def test_samples_use_seed_plus_index_and_report_progress(engine: Any, tmp_path: Path) -> None:
    files = {
        "inputImageUrl": saved(tmp_path, "a.png", png(64, 64, 1)),
        "inputImage2Url": saved(tmp_path, "b.png", png(64, 64, 2)),
    }
    calls: list[tuple[int, int]] = []
    two = run(engine, make_job(tmp_path, files, samples=2, seed=5), calls)
    assert calls == [(step, 2 * STEPS) for step in range(1, 2 * STEPS + 1)]
    assert len(two.images) == 2
    assert not np.array_equal(pixels(two, 0), pixels(two, 1))
    assert two.images[1].data == run(engine, make_job(tmp_path, files, seed=6)).images[0].data


def test_kill_propagates_out_of_the_denoising_loop(engine: Any, tmp_path: Path) -> None:
    files = {
        "inputImageUrl": saved(tmp_path, "a.png", png(64, 64, 1)),
        "inputImage2Url": saved(tmp_path, "b.png", png(64, 64, 2)),
    }
    job = make_job(tmp_path, files, steps=4)
    prepared = engine.preprocess(job)
    seen: list[int] = []

    def progress(step: int, total: int) -> None:
        seen.append(step)
        if step == 2:
            raise TaskKilled("killed")

    with pytest.raises(TaskKilled):
        engine.generate(job, prepared, progress)
    assert seen == [1, 2]
    assert len(run(engine, make_job(tmp_path, files)).images) == 1  # the pipeline is usable again
