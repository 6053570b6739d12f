"""The OpenAI Images API through the official ``openai`` package against a real server on tiny weights."""

from __future__ import annotations

import base64
import io
import threading
import time

import httpx
import openai
import pytest
from PIL import Image

from tests.support.files import image_bytes
from tests.support.service import Service

FAST = {"steps": 2}  # tiny weights: two denoising steps are enough


@pytest.fixture
def server(partner_local_service: Service) -> Service:
    """The run's shared server whose partner tools run on their local stand-ins (tests/conftest.py),
    so every tool is local on the tiny weights."""
    return partner_local_service


@pytest.fixture
def client(server: Service) -> openai.OpenAI:
    # The test project requires signatures, so the bearer token is "<api key>:<api secret>".
    return openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key=f"{server.api_key}:{server.api_secret}", max_retries=0
    )


def _decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_krea_b64_honours_size_and_n_gives_different_images(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="flux-krea-dev",
        prompt="a red fox",
        n=2,
        size="80x64",
        response_format="b64_json",
        extra_body=FAST,
    )
    images = [_decode(item.b64_json) for item in result.data]
    assert [image.size for image in images] == [(80, 64), (80, 64)]
    assert images[0].tobytes() != images[1].tobytes()
    assert result.size == "80x64" and result.output_format == "png" and result.created > 0


def test_lora_by_url_with_extra_tool_inputs_and_jpeg(client: openai.OpenAI, server: Service) -> None:
    result = client.images.generate(
        model="flux-dev-lora",
        prompt="a retro poster",
        size="64x80",
        output_format="jpeg",
        output_compression=80,
        extra_body={
            **FAST,
            "seed": 7,
            "selectedLoraModel": "678",
            "Movie-poster-style-LoRA-Flux-v1.0": "0.8",
            "guidance": 2.0,
        },
    )
    (item,) = result.data
    assert item.url and item.url.startswith(server.base_url)
    image = Image.open(io.BytesIO(httpx.get(item.url).content))
    assert image.format == "JPEG" and image.size == (64, 80)
    again = client.images.generate(
        model="wiro/text-to-image-flux-lora-fast",  # the slug works as well as the alias
        prompt="a retro poster",
        size="64x80",
        response_format="b64_json",
        extra_body={
            **FAST,
            "seed": 7,
            "selectedLoraModel": "678",
            "Movie-poster-style-LoRA-Flux-v1.0": "0.8",
            "guidance": 2.0,
        },
    )
    png = _decode(again.data[0].b64_json)
    assert png.format == "PNG" and png.size == (64, 80)


def test_each_request_is_an_ordinary_task(client: openai.OpenAI, server: Service) -> None:
    raw = client.images.with_raw_response.generate(
        model="flux-krea-dev", prompt="a blue bird", size="64x64", extra_body={**FAST, "seed": 11}
    )
    (taskid,) = raw.headers["x-fluxserve-task-ids"].split(",")
    task = server.detail(taskid)
    assert task["status"] == "task_postprocess_end"
    assert task["parameters"]["prompt"] == "a blue bird" and task["parameters"]["seed"] == "11"
    assert "_previews" not in task["parameters"]
    assert raw.parse().data[0].url == task["outputs"][0]["url"]


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [("flux-2-pro", "80x64", (80, 64)), ("flux-1.1-pro-ultra", "1024x576", "16:9")],
)
def test_partner_tools_on_local_stand_ins(client: openai.OpenAI, model: str, size: str, expected) -> None:
    result = client.images.generate(
        model=model, prompt="a lighthouse", size=size, n=2, response_format="b64_json"
    )
    images = [_decode(item.b64_json) for item in result.data]
    assert len(images) == 2 and images[0].tobytes() != images[1].tobytes()  # two tasks, seeds s and s+1
    if isinstance(expected, tuple):
        assert images[0].size == expected
    else:  # ultra renders the nearest aspect ratio at its own pixel count
        width, height = images[0].size
        assert abs(width / height - 16 / 9) < 0.05


def test_edit_with_two_images_runs_kontext(client: openai.OpenAI) -> None:
    room = ("room.png", image_bytes((80, 64), (200, 120, 40), "PNG"), "image/png")
    dog = ("dog.png", image_bytes((64, 64), (40, 90, 200), "PNG"), "image/png")
    result = client.images.edit(
        model="flux-kontext-dev",
        image=[room, dog],
        prompt="put the dog in the room",
        response_format="b64_json",
        extra_body={**FAST, "seed": 3},
    )
    assert _decode(result.data[0].b64_json).size == (80, 64)  # Kontext follows the first image
    one = client.images.edit(image=room, prompt="make it blue", response_format="b64_json", extra_body=FAST)
    assert _decode(one.data[0].b64_json).size == (80, 64)


def test_stream_sends_partial_images_then_the_final(client: openai.OpenAI) -> None:
    stream = client.images.generate(
        model="flux-krea-dev",
        prompt="a castle",
        size="64x64",
        stream=True,
        partial_images=2,
        extra_body={"steps": 6},
    )
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"], kinds
    assert [event.partial_image_index for event in events[:2]] == [0, 1]
    partials = [_decode(event.b64_json) for event in events[:2]]
    assert all(image.size == (64, 64) for image in partials)
    assert partials[0].tobytes() != partials[1].tobytes()  # the latents moved between them
    final = _decode(events[-1].b64_json)
    assert final.size == (64, 64) and final.format == "PNG"


def test_edit_stream_uses_image_edit_events(client: openai.OpenAI) -> None:
    room = ("room.png", image_bytes((64, 64), (200, 120, 40), "PNG"), "image/png")
    stream = client.images.edit(
        image=room, prompt="x", stream=True, partial_images=1, extra_body={"steps": 4}
    )
    kinds = [event.type for event in stream]
    assert kinds == ["image_edit.partial_image", "image_edit.completed"], kinds


def test_errors_come_as_the_sdks_exception_classes(client: openai.OpenAI, server: Service) -> None:
    with pytest.raises(openai.BadRequestError) as bad_size:
        client.images.generate(model="flux-krea-dev", prompt="x", size="100x100")
    assert bad_size.value.status_code == 400 and bad_size.value.body["param"] == "size"
    assert "multiples of 16" in bad_size.value.message
    with pytest.raises(openai.BadRequestError) as no_prompt:
        client.images.generate(model="flux-krea-dev", prompt="  ")
    assert no_prompt.value.body["param"] == "prompt"
    with pytest.raises(openai.BadRequestError) as bad_steps:
        client.images.generate(model="flux-krea-dev", prompt="x", extra_body={"steps": 1000})
    assert bad_steps.value.body["param"] == "steps" and "100" in bad_steps.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        client.images.generate(model="dall-e-3", prompt="x")
    assert unknown.value.body["code"] == "model_not_found" and "flux-krea-dev" in unknown.value.message
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="flux-kontext-dev", prompt="x")  # an edit model on /generations
    wrong = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as key_only:
        wrong.images.generate(model="flux-krea-dev", prompt="x")  # a key alone never opens this project
    assert "api secret" in key_only.value.message
    raw = httpx.post(f"{server.base_url}/v1/images/generations", json={"prompt": "x"})
    assert raw.status_code == 401 and set(raw.json()["error"]) == {"message", "type", "param", "code"}


def test_models_lists_the_tools(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"flux-krea-dev", "flux-1.1-pro-ultra", "flux-2-pro", "flux-dev-lora", "flux-kontext-dev"} <= ids


def test_an_openai_request_is_listed_and_killable(client: openai.OpenAI, server: Service) -> None:
    outcome: dict[str, Exception] = {}

    def call() -> None:
        try:
            client.images.generate(
                model="flux-krea-dev", prompt="a slow one", size="256x256", extra_body={"steps": 100}
            )
        except openai.APIStatusError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 120
    running = None
    while running is None and time.monotonic() < deadline:
        listed = server.post("/v1/Task/List", json={}).json()["tasklist"]
        running = next(
            (
                t
                for t in listed
                if t["parameters"].get("prompt") == "a slow one" and t["status"] == "task_start"
            ),
            None,
        )
        time.sleep(0.05)
    assert running is not None, "the OpenAI request's task never showed up running in Task/List"
    killed = server.post("/v1/Task/Kill", json={"taskid": running["id"]}).json()
    assert killed["result"] is True, killed
    thread.join(120)
    assert isinstance(outcome.get("error"), openai.ConflictError), outcome
    assert "killed" in outcome["error"].message
    assert server.detail(running["id"])["status"] == "task_cancel"


def test_a_body_over_the_limit_is_an_openai_413(server: Service) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/images/generations",
        content=b"{" + b" " * (51 * 2**20) + b"}",
        headers={
            "Authorization": f"Bearer {server.api_key}:{server.api_secret}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_flux2_streams_a_partial_image_from_its_own_latents(client: openai.OpenAI) -> None:
    events = list(
        client.images.generate(
            model="flux-2-pro", prompt="a bay", size="64x64", stream=True, partial_images=1
        )
    )
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert _decode(events[0].b64_json).size == (64, 64)
