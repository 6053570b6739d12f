"""An OpenAI Images request, checked, and the tool inputs of the task(s) it becomes.

OpenAI's fields map onto the tool's inputs: ``prompt``; ``n`` -> ``samples`` (split over several
tasks when the tool makes fewer images per task); ``size`` ``WxH`` -> ``width``/``height`` (or the
nearest ``aspectRatio`` for ultra, which renders at its own megapixel count); ``output_format`` ->
``outputFormat`` where the tool has it (else the API converts). Any other body field that names a
tool input passes through (``seed``, ``steps``, ``scale``, ``selectedLoraModel``, LoRA scale
fields…); ``guidance``/``guidance_scale`` and ``num_inference_steps`` are accepted for ``scale``
and ``steps``. Without ``seed`` each request gets a random one (OpenAI's images differ per call);
image ``i`` uses ``seed + i``.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from fluxserve.api.openai.errors import bad_request
from fluxserve.api.openai.models import ImageModel
from fluxserve.catalog.model import ToolSpec
from fluxserve.tasks.records import PREVIEWS_INPUT

MAX_N = 10
OUTPUT_FORMATS = ("png", "jpeg", "webp")
RESPONSE_FORMATS = ("url", "b64_json")
MAX_PARTIAL_IMAGES = 3
INPUT_ALIASES = {"guidance": "scale", "guidance_scale": "scale", "num_inference_steps": "steps"}
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")
_OPENAI_FIELDS = frozenset(
    {
        "model", "prompt", "n", "size", "response_format", "output_format", "output_compression",
        "user", "stream", "partial_images", "quality", "style", "background", "moderation",
        "input_fidelity", "image", "image[]", "mask",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ImageRequest:
    model: ImageModel
    prompt: str
    n: int = 1
    size: tuple[int, int] | None = None  # None: auto (the tool's default)
    response_format: str = "url"
    output_format: str = "png"
    output_compression: int = 100
    stream: bool = False
    partial_images: int = 0
    user: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse_request(fields: dict[str, Any], model: ImageModel) -> ImageRequest:
    """Check OpenAI's fields; a bad one raises a 400 naming it (``param``) and what is allowed."""
    prompt = str(fields.get("prompt") or "").strip()
    if not prompt:
        raise bad_request(
            "prompt: is required and must not be empty.", "prompt", "missing_required_parameter"
        )
    return ImageRequest(
        model=model,
        prompt=prompt,
        n=_int(fields, "n", 1, 1, MAX_N),
        size=_size(fields.get("size"), model.spec),
        response_format=_choice(fields, "response_format", "url", RESPONSE_FORMATS),
        output_format=_choice(fields, "output_format", "png", OUTPUT_FORMATS),
        output_compression=_int(fields, "output_compression", 100, 0, 100),
        stream=_bool(fields.get("stream")),
        partial_images=_int(fields, "partial_images", 0, 0, MAX_PARTIAL_IMAGES),
        user=str(fields.get("user") or ""),
        extra={
            INPUT_ALIASES.get(name, name): value
            for name, value in fields.items()
            if name not in _OPENAI_FIELDS and not name.startswith("_")
        },
    )


def _int(fields: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = fields.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise bad_request(
            f"{name}: must be a whole number from {low} to {high}, got {value!r}.", name
        ) from None
    if not low <= number <= high:
        raise bad_request(f"{name}: must be from {low} to {high}, got {number}.", name)
    return number


def _choice(fields: dict[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = str(fields.get(name) or default).strip().lower()
    if value == "jpg":
        value = "jpeg"
    if value not in allowed:
        raise bad_request(f"{name}: must be one of {', '.join(allowed)}, got {fields.get(name)!r}.", name)
    return value


def _bool(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def _size(value: Any, spec: ToolSpec) -> tuple[int, int] | None:
    text = str(value or "auto").strip().lower()
    if text == "auto":
        return None
    match = _SIZE.match(text)
    if not match:
        raise bad_request(f"size: must be 'WIDTHxHEIGHT' (e.g. 1024x768) or 'auto', got {value!r}.", "size")
    width, height = int(match.group(1)), int(match.group(2))
    sides = spec.input("width")
    if sides is not None:
        low, high = int(sides.rules.min or 64), int(sides.rules.max or 2048)
        for side in (width, height):
            if side % 16 or not low <= side <= high:
                raise bad_request(
                    f"size: width and height must be multiples of 16 from {low} to {high} for this model, "
                    f"got {width}x{height}.",
                    "size",
                )
    elif width <= 0 or height <= 0:
        raise bad_request(f"size: both sides must be positive, got {width}x{height}.", "size")
    return width, height


def images_per_task(spec: ToolSpec) -> int:
    samples = spec.input("samples")
    return int(samples.rules.max or 1) if samples is not None else 1


def task_batches(request: ImageRequest) -> list[int]:
    """How many images each task makes: ``n`` split into the tool's per-task maximum."""
    per_task = images_per_task(request.model.spec)
    counts = [per_task] * (request.n // per_task)
    return counts + ([request.n % per_task] if request.n % per_task else [])


def base_seed(request: ImageRequest) -> int | None:
    """The user's seed (None when it is not a whole number: validation names it), or a random one."""
    given = request.extra.get("seed")
    if given is None or str(given).strip() == "":
        return secrets.randbelow(2**31)
    try:
        return int(str(given).strip())
    except ValueError:
        return None


def tool_fields(request: ImageRequest, count: int, offset: int, seed: int | None) -> dict[str, Any]:
    """The body fields of one task making ``count`` images, the ``offset``-th image onwards."""
    spec = request.model.spec
    fields = dict(request.extra)
    fields["prompt"] = request.prompt
    if spec.input("samples") is not None:
        fields["samples"] = str(count)
    if seed is not None and spec.input("seed") is not None:
        fields["seed"] = str(seed + offset)
    if request.size is not None:
        if spec.input("width") is not None and spec.input("height") is not None:
            fields["width"], fields["height"] = str(request.size[0]), str(request.size[1])
        elif spec.input("aspectRatio") is not None:
            fields["aspectRatio"] = nearest_aspect_ratio(request.size, spec)
    output = spec.input("outputFormat")
    if output is not None and request.output_format in output.option_values:
        fields["outputFormat"] = request.output_format
    return fields


def hidden_inputs(request: ImageRequest) -> dict[str, Any]:
    """Inputs the worker reads that are not tool inputs: previews for partial images."""
    return {PREVIEWS_INPUT: request.partial_images} if request.stream and request.partial_images else {}


def nearest_aspect_ratio(size: tuple[int, int], spec: ToolSpec) -> str:
    """The ``aspectRatio`` option closest (in log ratio) to ``size``."""
    options = spec.input("aspectRatio").option_values
    wanted = math.log(size[0] / size[1])

    def distance(option: str) -> float:
        across, _, down = option.partition(":")
        return abs(math.log(int(across) / int(down)) - wanted)

    return min(options, key=distance)
