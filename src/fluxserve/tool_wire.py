"""Tools in Wiro's Tool/List and Tool/Detail shape (``markdown/models.md``, ``model-parameters.md``).

A tool's inputs become ``parameters: [{title, subtitle, items: [...]}]``; each item says what a
form needs (``id, type, label, description, note, placeholder, default, required, advanced,
options``, and ``min, max, step`` for a ``range``), derived from the same catalog rules that
validate a Run, so the schema and the validation cannot disagree. Wiro's parameter types:
``textarea``, ``text``, ``select``, ``range``, ``fileinput``. A file input is one ``fileinput``
item whose id is the multipart part (``inputImage``); its URL travels in ``{id}Url``
(``inputImageUrl``) or directly in ``{id}`` — model-parameters.md's conventions.

Pure functions over catalog records (no HTTP), shared by the API and readable by the client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fluxserve.catalog.coerce import SEED_MAX, to_wire_string
from fluxserve.catalog.model import InputSpec, ToolSpec

LIST_SUMMARY_FIELDS = (
    "id",
    "title",
    "slugowner",
    "slugproject",
    "cleanslugowner",
    "cleanslugproject",
    "description",
    "seodescription",
    "image",
    "computingtime",
    "categories",
    "tags",
    "marketplace",
    "onlymembers",
    "averagepoint",
    "commentcount",
    "dynamicprice",
    "taskstat",
    "available",
    "unavailablereason",
)
"""The fields of a Tool/List item when the request asks for ``summary`` (models.md's List example)."""


@dataclass(frozen=True)
class ToolStats:
    """How often a tool ran here (Wiro's ``taskstat``)."""

    runcount: int = 0
    successcount: int = 0
    errorcount: int = 0
    lastruntime: int = 0


def _number(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _range_note(low: float | None, high: float | None, multiple: int | None) -> str:
    note = f"{_number(low)} to {_number(high)}"
    return f"{note}, a multiple of {multiple}" if multiple else note


def _wiro_type(spec: InputSpec) -> str:
    kind = spec.rules.kind
    if kind == "image":
        return "fileinput"
    if spec.type in ("select", "textarea"):
        return spec.type
    if kind in ("integer", "float") and spec.rules.min is not None and spec.rules.max is not None:
        return "range"
    return "text"


def _step(spec: InputSpec) -> int | float:
    rules = spec.rules
    if rules.step is not None:
        return _number(rules.step)  # type: ignore[return-value]
    if rules.multiple_of:
        return rules.multiple_of
    return 1 if rules.kind == "integer" else 0.1


def _note(spec: InputSpec, wiro_type: str) -> str:
    rules = spec.rules
    if wiro_type == "fileinput":
        part = rules.file_field or spec.name
        return (
            f"Upload an image as the multipart part '{part}', or give its http(s) URL in '{spec.name}' "
            f"(or directly in '{part}'), or the name of a file uploaded with /v1/File/Upload."
        )
    if wiro_type == "range":
        return _range_note(rules.min, rules.max, rules.multiple_of)
    if rules.kind == "seed":
        return f"A whole number from 0 to {SEED_MAX}; empty picks a random seed."
    if rules.kind == "multiselect":
        return "One id, several ids (a list or comma-separated), or empty for the base model."
    if rules.kind == "string" and rules.max_length:
        return f"Up to {rules.max_length} characters."
    if rules.kind == "url":
        return "An http(s) URL."
    return ""


def parameter_item(spec: InputSpec) -> dict[str, Any]:
    """One input as a Tool/Detail parameter item."""
    wiro_type = _wiro_type(spec)
    rules = spec.rules
    item: dict[str, Any] = {
        "id": rules.file_field if wiro_type == "fileinput" and rules.file_field else spec.name,
        "type": wiro_type,
        "label": spec.label,
        "description": spec.help,
        "note": _note(spec, wiro_type),
        "placeholder": "",
        "default": to_wire_string(spec.default),
        "required": bool(rules.required),
        "advanced": rules.kind == "seed",
        "options": [_option(option) for option in spec.options or []],
    }
    if wiro_type == "range":
        item.update(min=_number(rules.min), max=_number(rules.max), step=_step(spec))
    if rules.kind == "multiselect":
        item["multiple"] = True
    return item


def _option(option: dict[str, Any]) -> dict[str, Any]:
    """A select option: ``label`` and ``value`` as strings, plus what the seed adds (LoRA details)."""
    return {**option, "value": to_wire_string(option.get("value")), "label": str(option.get("label", ""))}


def parameter_groups(tool: ToolSpec) -> list[dict[str, Any]]:
    """One group. The LoRA tool's per-LoRA scale fields are described where the seed puts them: in
    each ``selectedLoraModel`` option's ``generatesettings`` (id, min/max, step, default)."""
    return [{"title": "Input", "subtitle": "", "items": [parameter_item(spec) for spec in tool.inputs]}]


def _inspire(tool: ToolSpec) -> list[dict[str, str]]:
    """One example request: the defaults of the prompt and file inputs (Wiro's ``inspire``)."""
    example = {}
    for spec in tool.inputs:
        item = parameter_item(spec)
        if item["type"] in ("textarea", "fileinput"):
            example[item["id"]] = item["default"]
    return [example] if example else []


def tool_to_wire(
    tool: ToolSpec,
    unavailable_reason: str | None = None,
    stats: ToolStats | None = None,
    *,
    detail: bool = True,
    summary: bool = False,
) -> dict[str, Any]:
    """One tool as Tool/Detail (``detail``) or Tool/List shows it; ``summary`` keeps List's short form.

    JSON types follow models.md's examples, which differ between the two endpoints: ``dynamicprice``
    is a JSON string in List and an array in Detail, ``taskstat.runcount`` a number in List and a
    string in Detail. fluxserve adds ``available`` and ``unavailablereason``.
    """
    stats = stats or ToolStats()
    runcount: int | str = str(stats.runcount) if detail else stats.runcount
    item: dict[str, Any] = {
        "id": str(tool.id),
        "title": tool.tool,
        "slugowner": tool.slugowner,
        "slugproject": tool.slugproject,
        "cleanslugowner": tool.slugowner,
        "cleanslugproject": tool.slugproject,
        "description": tool.description,
        "seodescription": tool.description,
        "image": tool.cover,
        "computingtime": "",
        "readme": tool.description,
        "categories": list(tool.categories),
        "parameters": parameter_groups(tool),
        "inspire": _inspire(tool),
        "samples": [],
        "tags": list(tool.tags),
        "marketplace": 1,
        "onlymembers": "0",
        "dynamicprice": [] if detail else json.dumps([]),
        "cps": "0",
        "approximatelycost": "0",
        "averagepoint": "0.00",
        "commentcount": "0",
        "ratedusercount": "0",
        "taskstat": {
            "runcount": runcount,
            "successcount": str(stats.successcount),
            "errorcount": str(stats.errorcount),
            "lastruntime": str(stats.lastruntime),
        },
        "seotitle": tool.tool,
        "available": "false" if unavailable_reason else "true",
        "unavailablereason": unavailable_reason or "",
    }
    if summary:
        return {key: item[key] for key in LIST_SUMMARY_FIELDS}
    return item
