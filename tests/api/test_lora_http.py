"""wiro/text-to-image-flux-lora-fast over HTTP on the tiny weights: catalog LoRAs, scales, trigger
words, private-URL LoRAs and their failures, and base-model isolation."""

from __future__ import annotations

import pickle
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from safetensors.torch import load_file, save_file

from tests.support.files import static_server
from tests.support.seeds import run_seed_curl
from tests.support.service import Service

LORA = "wiro/text-to-image-flux-lora-fast"
POSTER = "Movie-poster-style-LoRA-Flux-v1.0"
BASE = {"prompt": "a lion under the stars", "steps": 2, "width": 64, "height": 64, "seed": "11"}


def _image(service: Service, **inputs) -> bytes:
    task = service.wait(service.run(LORA, **{**BASE, **inputs})["taskid"])
    assert task["status"] == "task_postprocess_end" and task["pexit"] == "0", task["debugerror"]
    return httpx.get(task["outputs"][0]["url"]).content


def _failure(service: Service, **inputs) -> str:
    task = service.wait(service.run(LORA, **{**BASE, **inputs})["taskid"])
    assert task["status"] == "task_postprocess_end" and task["pexit"] != "0" and task["outputs"] == []
    return task["debugerror"]


@pytest.fixture(scope="module")
def poster_lora(tiny_weights_dir):
    return tiny_weights_dir / "FreshIdeas/Movie-poster-style-LoRA-Flux/lora.safetensors"


def test_the_seed_request_runs_verbatim_on_the_base_model(service: Service) -> None:
    answer = run_seed_curl(service, LORA)
    assert answer["result"] is True, answer
    task = service.wait(answer["taskid"], timeout=300)
    assert task["status"] == "task_postprocess_end", task["debugerror"]
    assert task["parameters"]["selectedLoraModel"] == "" and task["parameters"]["steps"] == "20"


def test_catalog_lora_scale_and_combination_change_the_image_and_base_stays_clean(service: Service) -> None:
    base_before = _image(service)
    poster = _image(service, selectedLoraModel="678")
    assert poster != base_before
    assert _image(service, selectedLoraModel=["678"], **{POSTER: "0"}) == _image(
        service, prompt=f"FRESH IDEAS Movie poster style, {BASE['prompt']}"
    )  # scale 0 is the base model (with the trigger words, which are still applied)
    both = _image(service, selectedLoraModel="678,1328")
    assert both not in (poster, base_before)
    assert _image(service) == base_before  # a base task after LoRA tasks sees no adapter


def test_trigger_words_go_in_front_of_the_prompt_unless_present(service: Service) -> None:
    implicit = _image(service, selectedLoraModel="1328")
    explicit = _image(service, selectedLoraModel="1328", prompt=f"wp4p, {BASE['prompt']}")
    assert implicit == explicit


def test_unknown_ids_and_out_of_range_scales_are_refused_at_run_time(service: Service) -> None:
    unknown = service.post(f"/v1/Run/{LORA}", json={**BASE, "selectedLoraModel": "655"})
    assert unknown.status_code == 200
    message = unknown.json()["errors"][0]["message"]
    assert (
        message.startswith("Request parameter [selectedLoraModel] ") and "655" in message and "678" in message
    )
    scale = service.post(f"/v1/Run/{LORA}", json={**BASE, "selectedLoraModel": "678", POSTER: "1.5"})
    assert scale.status_code == 200
    assert scale.json()["errors"][0]["message"] == f"Request parameter [{POSTER}] must be between 0 and 1"


def test_a_private_url_lora_is_downloaded_and_applied(service: Service, poster_lora, tmp_path) -> None:
    shutil.copy(poster_lora, tmp_path / "mine.safetensors")
    with static_server(tmp_path) as base:
        mine = _image(service, selectedLoraModelPrivateUrl=f"{base}/mine.safetensors")
        again = _image(service, selectedLoraModelPrivateUrl=f"{base}/mine.safetensors")  # cached by hash
    assert mine == again
    assert mine != _image(service)


def test_private_url_failures_are_clear(service: Service, poster_lora, tmp_path) -> None:
    (tmp_path / "pickle.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    tensors = load_file(str(poster_lora))
    name = next(iter(tensors))
    tensors[name] = tensors[name].new_ones((3, 5))
    save_file(tensors, str(tmp_path / "shapes.safetensors"))
    with static_server(tmp_path) as base:
        not_safetensors = _failure(service, selectedLoraModelPrivateUrl=f"{base}/pickle.safetensors")
        wrong_shapes = _failure(service, selectedLoraModelPrivateUrl=f"{base}/shapes.safetensors")
        missing = _failure(service, selectedLoraModelPrivateUrl=f"{base}/missing.safetensors")
    assert "selectedLoraModelPrivateUrl" in not_safetensors and "safetensors" in not_safetensors
    assert "shape" in wrong_shapes
    assert "404" in missing


class _DeclaresThreeGibibytes(BaseHTTPRequestHandler):
    """Answers every GET with a LoRA that says it is 3 GiB long, then sends nothing."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(3 * 2**30))
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_an_oversized_private_lora_is_refused_before_its_body(service: Service) -> None:
    """Over the default 2 GiB limit (FLUXSERVE_MAX_LORA_BYTES), refused from the declared length: had
    the worker waited for the body it would never have come. Bodies that grow past the limit
    without declaring it: tests/net/test_safe_fetch.py."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DeclaresThreeGibibytes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/huge.safetensors"
        message = _failure(service, selectedLoraModelPrivateUrl=url)
    finally:
        server.shutdown()
        server.server_close()
    assert message.startswith("selectedLoraModelPrivateUrl:") and "larger than the 2 GiB limit" in message
