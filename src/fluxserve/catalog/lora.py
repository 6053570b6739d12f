"""The LoRA catalog and the request rules of the LoRA tool that go beyond its inputs.

One source: a LoRA's id, label, description, trigger words and scale setting are the options of the
tool's ``selectedLoraModel`` input in its catalog YAML (as the seed shows them); ``loras.yaml`` only
adds where each LoRA's weights live (Hugging Face repo and file), keyed by id.

``wiro/text-to-image-flux-lora-fast`` takes ``selectedLoraModel`` (one id, a list of ids or a
comma-separated string; coerced by :mod:`fluxserve.catalog.coerce`), and for every selected LoRA an
optional scale in the request field named after that LoRA's scale setting id, e.g.
``"Movie-poster-style-LoRA-Flux-v1.0": "0.8"``. Those fields are not declared inputs of the tool,
so :func:`apply_lora_rules` validates them after :func:`~fluxserve.catalog.coerce.validate_inputs`
and adds them to the task's values and echoed parameters.

Decisions (what a user would expect):

* no selection (missing, ``""``, ``[]``) runs the plain FLUX.1-dev base model;
* an unknown id, including the seed's default ``"655"`` (which is not among its options), is a
  validation error that lists the valid ids with their labels;
* a selected LoRA's scale defaults to its setting's default (1.0) and must lie within min..max;
* scale fields of LoRAs that are not selected are ignored;
* trigger words of the selected LoRAs are put in front of the prompt, in selection order, unless
  the prompt already contains them (case-insensitively).

Pure Python (PyYAML only), like the rest of the catalog package.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fluxserve.catalog.coerce import InvalidValue, ValidatedInputs, coerce_value, to_wire_string
from fluxserve.catalog.model import InputRules, InputSpec, ToolSpec
from fluxserve.catalog.yaml_files import load_yaml
from fluxserve.errors import FieldError, ValidationError

SELECT_FIELD = "selectedLoraModel"
PRIVATE_URL_FIELD = "selectedLoraModelPrivateUrl"


@dataclass(frozen=True)
class LoraScale:
    """A LoRA's scale setting: the request field ``id`` and its range."""

    id: str
    min: float
    max: float
    default: float
    step: float

    def as_input(self) -> InputSpec:
        """The scale as a float input, so it is coerced and checked like every other input."""
        rules = InputRules(kind="float", min=self.min, max=self.max)
        return InputSpec(self.id, f"{self.id} scale", "", "float", self.default, rules=rules)


@dataclass(frozen=True)
class LoraEntry:
    """One catalog LoRA: what the seed shows, plus where its weights live."""

    id: str
    label: str
    description: str
    triggerwords: tuple[str, ...]
    scale: LoraScale
    repo: str
    weight_name: str

    @classmethod
    def from_option(cls, option: Mapping[str, Any], weights: Mapping[str, Any]) -> LoraEntry:
        """One ``selectedLoraModel`` option of the tool YAML, plus its entry of ``loras.yaml``."""
        setting = option["generatesettings"][0]  # the seed gives every LoRA one float scale setting
        lora_id = str(option["value"])
        if lora_id not in weights:
            raise ValueError(f"loras.yaml has no weights for the catalog LoRA {lora_id!r}")
        return cls(
            id=lora_id,
            label=str(option["label"]),
            description=str(option.get("description", "")),
            triggerwords=tuple(str(word) for word in option.get("triggerwords") or ()),
            scale=LoraScale(
                id=str(setting["id"]),
                min=float(setting["minvalue"]),
                max=float(setting["maxvalue"]),
                default=float(setting["defaultvalue"]),
                step=float(setting["incrementby"]),
            ),
            repo=str(weights[lora_id]["repo"]),
            weight_name=str(weights[lora_id]["weight_name"]),
        )


@functools.cache
def load_lora_catalog() -> tuple[LoraEntry, ...]:
    """The catalog LoRAs, in the seed's order: the LoRA tool's options with their weight files."""
    from fluxserve.catalog import Catalog

    folder = resources.files("fluxserve.catalog")
    weights = load_yaml(folder.joinpath("loras.yaml").read_text(encoding="utf-8"))
    options = [
        option
        for tool in Catalog.builtin()
        if (select := tool.input(SELECT_FIELD)) is not None
        for option in select.options or []
    ]
    return tuple(LoraEntry.from_option(option, weights) for option in options)


def lora_entry(lora_id: str) -> LoraEntry:
    """The catalog entry for ``lora_id``; ValidationError listing the valid ids otherwise."""
    for entry in load_lora_catalog():
        if entry.id == str(lora_id).strip():
            return entry
    raise ValidationError([FieldError(SELECT_FIELD, unknown_id_message([str(lora_id)]))])


def unknown_id_message(unknown: Sequence[str]) -> str:
    valid = "; ".join(f"'{entry.id}' ({entry.label})" for entry in load_lora_catalog())
    shown = ", ".join(f"'{item}'" for item in unknown)
    return f"unknown LoRA id(s) {shown}. Valid ids: {valid}. Send none (empty) to use the base model."


def validate_lora_scales(raw: Mapping[str, Any], selected: Sequence[str]) -> dict[str, float]:
    """The scale of each selected LoRA, keyed by its setting id; ValidationError lists every problem."""
    known = {entry.id: entry for entry in load_lora_catalog()}
    unknown = [item for item in selected if item not in known]
    if unknown:
        raise ValidationError([FieldError(SELECT_FIELD, unknown_id_message(unknown))])
    scales: dict[str, float] = {}
    errors: list[FieldError] = []
    for lora_id in selected:
        setting = known[lora_id].scale
        try:
            scales[setting.id] = coerce_value(setting.as_input(), raw.get(setting.id))
        except InvalidValue as exc:
            errors.append(FieldError(setting.id, str(exc)))
    if errors:
        raise ValidationError(errors)
    return scales


def apply_lora_rules(tool: ToolSpec, raw: Mapping[str, Any], validated: ValidatedInputs) -> ValidatedInputs:
    """Call from the API after ``validate_inputs(tool, raw)`` with the same raw request dict.

    For tools without a ``selectedLoraModel`` input this returns ``validated`` unchanged. For the
    LoRA tool it checks the selected ids against the catalog and the per-LoRA scale fields, and
    returns the values/parameters with one entry per selected LoRA's scale setting id added
    (``values[setting_id]`` a float, ``parameters[setting_id]`` its wire string). Raises
    :class:`ValidationError` naming the offending field.
    """
    if tool.input(SELECT_FIELD) is None:
        return validated
    selected = list(validated.values.get(SELECT_FIELD) or [])
    scales = validate_lora_scales(raw, selected)
    values = {**validated.values, **scales}
    parameters = {**validated.parameters, **{key: to_wire_string(value) for key, value in scales.items()}}
    return ValidatedInputs(values=values, parameters=parameters)


def prompt_with_triggers(prompt: str, entries: Sequence[LoraEntry]) -> str:
    """Put the trigger words of ``entries`` in front of ``prompt``, skipping those already in it."""
    lowered = prompt.lower()
    missing: list[str] = []
    for entry in entries:
        for word in entry.triggerwords:
            if word.lower() not in lowered and word not in missing:
                missing.append(word)
    if not missing:
        return prompt
    return ", ".join([*missing, prompt]) if prompt.strip() else ", ".join(missing)
