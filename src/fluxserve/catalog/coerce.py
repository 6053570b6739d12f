"""Turn Wiro's loosely typed request values into checked Python values.

Clients send ``"scale": "4.5"``, ``"seed": "3572004920"`` or ``"steps": 25`` alike; every value is
coerced according to its input's rules, then checked (range, multiple, options). Every problem is
collected, so one answer tells the client everything that is wrong. Shared by the server and the
client SDK, hence pure Python with no heavy imports.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fluxserve.catalog.model import InputSpec, ToolSpec
from fluxserve.errors import FieldError, ValidationError

SEED_MAX = 2**64 - 1
_INT_RE = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class InvalidValue(ValueError):
    """One value is unacceptable; the message says what is allowed (the caller adds the field name)."""


@dataclass(frozen=True)
class ValidatedInputs:
    """``values``: typed, defaults filled in. ``parameters``: the same as strings, echoed in Detail."""

    values: dict[str, Any]
    parameters: dict[str, str]


def validate_inputs(
    tool: ToolSpec, raw: Mapping[str, Any], file_fields: frozenset[str] = frozenset()
) -> ValidatedInputs:
    """Coerce and check every input of ``tool`` from ``raw``; raise ValidationError listing all problems.

    ``file_fields`` names the multipart file parts that came with the request; an image input whose
    file part was uploaded does not need its URL.
    """
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for spec in tool.inputs:
        uploaded = spec.rules.file_field in file_fields if spec.rules.file_field else False
        try:
            values[spec.name] = coerce_value(spec, raw.get(spec.name), uploaded)
        except InvalidValue as exc:
            errors.append(FieldError(spec.name, str(exc)))
    if errors:
        raise ValidationError(errors)
    return ValidatedInputs(values=values, parameters={k: to_wire_string(v) for k, v in values.items()})


def to_wire_string(value: Any) -> str:
    """Render a coerced value the way Wiro echoes parameters: every scalar as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return "" if value is None else str(value)


def coerce_value(spec: InputSpec, value: Any, uploaded: bool = False) -> Any:
    """One input's value, coerced and checked by its rules (defaults filled); raises InvalidValue."""
    rules = spec.rules
    missing = value is None or (isinstance(value, str) and value.strip() == "" and rules.kind != "seed")
    if missing:
        if rules.required and not uploaded:
            if rules.kind == "image":
                raise InvalidValue(
                    f"is required: give an http(s) URL of an image, the name of a file uploaded earlier, "
                    f"or send the image as the multipart file part '{rules.file_field}'"
                )
            raise InvalidValue("is required and must not be empty")
        if rules.kind == "multiselect":
            return []  # nothing selected: run without catalog adapters
        if rules.kind in ("url", "image"):
            return ""
        if rules.kind == "string" and value is not None:
            return ""
        value = spec.default
    coerce = _COERCERS[rules.kind]
    return coerce(spec, value)


def as_int(value: Any, what: str = "a whole number") -> int:
    if isinstance(value, bool):
        raise InvalidValue(f"must be {what}, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise InvalidValue(f"must be {what}, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if _INT_RE.match(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            raise InvalidValue(f"must be {what}, got {value!r}") from None
        if math.isfinite(number) and number.is_integer():
            return int(number)
    raise InvalidValue(f"must be {what}, got {value!r}")


def _check_range(spec: InputSpec, number: float, unit: str = "") -> None:
    low, high = spec.rules.min, spec.rules.max
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidValue(f"must be between {_fmt(low)} and {_fmt(high)}{unit}, got {_fmt(number)}")


def _fmt(number: float | None) -> str:
    if number is None:
        return "any"
    return str(int(number)) if float(number).is_integer() else str(number)


def _coerce_integer(spec: InputSpec, value: Any) -> int:
    number = as_int(value)
    _check_range(spec, number)
    step = spec.rules.multiple_of
    if step and number % step:
        raise InvalidValue(
            f"must be a multiple of {step}, got {number} (nearest: {round(number / step) * step or step})"
        )
    return number


def _coerce_float(spec: InputSpec, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidValue("must be a number, got a boolean")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidValue(f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidValue(f"must be a finite number, got {value!r}")
    _check_range(spec, number)
    return number


def _coerce_seed(spec: InputSpec, value: Any) -> int:
    if isinstance(value, str) and value.strip() == "":
        return random.randint(0, 2**32 - 1)  # empty seed: pick one, echoed so the run can be repeated
    number = as_int(value, f"a whole number from 0 to {SEED_MAX} (or empty for a random seed)")
    if not 0 <= number <= SEED_MAX:
        raise InvalidValue(
            f"must be a whole number from 0 to {SEED_MAX} (or empty for a random seed), got {number}"
        )
    return number


def _coerce_boolean(spec: InputSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidValue(f"must be one of 'true' or 'false', got {value!r}")


def _coerce_select(spec: InputSpec, value: Any) -> str:
    if isinstance(value, (list, dict)):
        raise InvalidValue(f"must be one value, got {type(value).__name__}")
    text = to_wire_string(value).strip()
    allowed = spec.option_values
    if text not in allowed and not (text == "" and not allowed):
        shown = ", ".join(f"'{item}'" for item in allowed) or "'' (nothing)"
        raise InvalidValue(f"must be one of {shown}, got {text!r}")
    return text


def _coerce_multiselect(spec: InputSpec, value: Any) -> list[str]:
    items = split_multi_value(value)
    allowed = spec.option_values
    unknown = [item for item in items if item not in allowed]
    if unknown:
        shown = ", ".join(map(repr, unknown))
        raise InvalidValue(f"unknown option(s) {shown}; allowed: {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def split_multi_value(value: Any) -> list[str]:
    """One id, a list of ids, a JSON list in a string, or a comma-separated string -> list of ids."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise InvalidValue(f"is not a valid list: {text!r}") from None
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [to_wire_string(value)]
    if isinstance(value, list) and all(
        isinstance(item, (str, int)) and not isinstance(item, bool) for item in value
    ):
        return [str(item).strip() for item in value if str(item).strip()]
    raise InvalidValue(f"must be an id, a list of ids or a comma-separated string, got {value!r}")


def _coerce_string(spec: InputSpec, value: Any) -> str:
    if isinstance(value, (list, dict, bool)):
        raise InvalidValue(f"must be text, got {type(value).__name__}")
    text = str(value)
    limit = spec.rules.max_length
    if limit and len(text) > limit:
        raise InvalidValue(f"must be at most {limit} characters, got {len(text)}")
    return text


def _coerce_url(spec: InputSpec, value: Any) -> str:
    text = _coerce_string(spec, value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidValue(f"must be an http:// or https:// URL, got {text!r}")
    return text


def _coerce_image(spec: InputSpec, value: Any) -> str:
    """An image reference: a URL, or the name of a file uploaded with the request or earlier."""
    return _coerce_string(spec, value).strip()


_COERCERS = {
    "string": _coerce_string,
    "integer": _coerce_integer,
    "float": _coerce_float,
    "seed": _coerce_seed,
    "boolean": _coerce_boolean,
    "select": _coerce_select,
    "multiselect": _coerce_multiselect,
    "url": _coerce_url,
    "image": _coerce_image,
}
