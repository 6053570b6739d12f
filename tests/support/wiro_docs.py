"""The examples of Wiro's documentation (tests/fixtures/wiro_docs) and a field-by-field comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wiro_docs"


def doc(name: str) -> dict[str, Any]:
    """One fixture file (each names the document it was copied from in ``_source``)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def shape_problems(example: Any, ours: Any, path: str = "$") -> list[str]:
    """Where ``ours`` lacks a field of ``example`` or has another JSON type, recursively.

    Every element of an array of ours is compared with the example's first element. A ``null`` in
    the example only requires the field to exist (the documents use it for "no value"). Fields of
    ours that the example does not show are allowed (fluxserve adds a few).
    """
    if example is None:
        return []
    if json_type(example) != json_type(ours):
        return [f"{path}: the document has {json_type(example)}, fluxserve {json_type(ours)}"]
    problems: list[str] = []
    if isinstance(example, dict):
        for key, value in example.items():
            if key.startswith("_"):
                continue
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += shape_problems(value, ours[key], f"{path}.{key}")
    elif isinstance(example, list) and example:
        for index, item in enumerate(ours):
            problems += shape_problems(example[0], item, f"{path}[{index}]")
    return problems


def message_matches(documented: str, match: str, message: str) -> bool:
    """``exact``; ``prefix`` (a sentence may follow); ``pattern`` ({placeholders} stand for any text)."""
    if match == "exact":
        return message == documented
    if match == "prefix":
        return message.startswith(documented)
    regex = re.escape(documented)
    regex = re.sub(r"\\\{[a-z]+\\\}", ".+", regex)
    return re.fullmatch(regex, message) is not None
