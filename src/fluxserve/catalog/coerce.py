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
MAX_DIGITS = 40
"""Whole numbers with more digits are refused (the largest any input takes, a seed, has 20)."""
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_HTTP_SCHEME = re.compile(r"^\s*https?:", re.IGNORECASE)
NOT_A_NUMBER = "must be integer or float"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class InvalidValue(ValueError):
    """One value is unacceptable; the message says what is allowed (the caller adds the field name).

    Where Wiro's error reference has a message for the problem, the text is the rest of that message
    after "Request parameter [name] ": "required", "must be integer or float",
    "must be between {min} and {max}".
    """


class MissingFile(InvalidValue):
    """A required file input got neither a file part nor a URL ("Request files [name] required")."""


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
        except MissingFile as exc:
            errors.append(FieldError(spec.rules.file_field or spec.name, str(exc), file=True))
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
            raise MissingFile("required") if rules.kind == "image" else InvalidValue("required")
        if rules.kind == "multiselect":
            return []  # nothing selected: run without catalog adapters
        if rules.kind in ("url", "image"):
            return ""
        if rules.kind == "string" and value is not None:
            return ""
        value = spec.default
    coerce = _COERCERS[rules.kind]
    return coerce(spec, value)


def as_int(value: Any, what: str = "a whole number", not_a_number: str = NOT_A_NUMBER) -> int:
    if isinstance(value, bool):
        raise InvalidValue(f"must be {what}, got a boolean")
    if isinstance(value, int):
        _check_digits(value, what)
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            _check_digits(int(value), what)
            return int(value)
        raise InvalidValue(f"must be {what}, got {_shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if _INT_RE.match(text):
            if len(text.lstrip("+-")) > MAX_DIGITS:
                raise InvalidValue(f"must be {what}, got a number with {len(text.lstrip('+-'))} digits")
            return int(text)
        try:
            number = float(text)
        except ValueError:
            raise InvalidValue(not_a_number) from None
        if math.isfinite(number) and number.is_integer():
            _check_digits(int(number), what)
            return int(number)
        raise InvalidValue(f"must be {what}, got {_shown(value)}")
    raise InvalidValue(not_a_number)


def _check_digits(number: int, what: str) -> None:
    if abs(number) >= 10**MAX_DIGITS:
        raise InvalidValue(f"must be {what}, got a number with more than {MAX_DIGITS} digits")


def _check_range(spec: InputSpec, number: float, unit: str = "") -> None:
    low, high = spec.rules.min, spec.rules.max
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidValue(f"must be between {_fmt(low)} and {_fmt(high)}{unit}")


def _fmt(number: float | None) -> str:
    if number is None:
        return "any"
    if isinstance(number, int):
        return str(number)
    return str(int(number)) if number.is_integer() else str(number)


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
    if isinstance(value, int) and abs(value) >= 10**MAX_DIGITS:
        raise InvalidValue(f"must be a number, got one with more than {MAX_DIGITS} digits")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidValue(NOT_A_NUMBER) from None
    if not math.isfinite(number):
        raise InvalidValue(f"must be a finite number, got {_shown(value)}")
    _check_range(spec, number)
    return number


def _coerce_seed(spec: InputSpec, value: Any) -> int:
    if isinstance(value, str) and value.strip() == "":
        return random.randint(0, 2**32 - 1)  # empty seed: pick one, echoed so the run can be repeated
    what = f"a whole number from 0 to {SEED_MAX} (or empty for a random seed)"
    number = as_int(value, what, f"must be {what}, got {_shown(value)}")
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
    raise InvalidValue(f"must be one of 'true' or 'false', got {_shown(value)}")


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
    raise InvalidValue(f"must be an id, a list of ids or a comma-separated string, got {_shown(value)}")


def _coerce_string(spec: InputSpec, value: Any) -> str:
    if isinstance(value, (list, dict, bool)):
        raise InvalidValue(f"must be text, got {type(value).__name__}")
    text = str(value)
    limit = spec.rules.max_length
    if limit and len(text) > limit:
        raise InvalidValue(f"must be at most {limit} characters, got {len(text)}")
    return text


def looks_like_http_url(text: str) -> bool:
    """True when ``text`` starts with http: or https: (any case): meant as a URL, so it must be one."""
    return bool(_HTTP_SCHEME.match(text))


def http_url(text: str) -> str:
    """``text`` if it is an http(s) URL that can be requested; InvalidValue saying what is wrong.

    The one URL check for every URL a client gives (image inputs, LoRA URLs, callbackUrl): the
    scheme in any case, a host, a valid port and IPv6 literal, no spaces or control characters.
    """
    text = text.strip()
    bad = _URL_FORBIDDEN.search(text)
    if bad:
        raise InvalidValue(
            f"must be an http:// or https:// URL without spaces or control characters, "
            f"got {_shown(text)} (character {bad.group()!r} at position {bad.start()})"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise InvalidValue(f"must be a valid http:// or https:// URL, got {_shown(text)} ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidValue(f"must be an http:// or https:// URL with a host name, got {_shown(text)}")
    return text


def _shown(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message must stay readable)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _coerce_url(spec: InputSpec, value: Any) -> str:
    return http_url(_coerce_string(spec, value))


def _coerce_image(spec: InputSpec, value: Any) -> str:
    """An image reference: a URL, or the name of a file uploaded with the request or earlier."""
    text = _coerce_string(spec, value).strip()
    return http_url(text) if looks_like_http_url(text) else text


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
