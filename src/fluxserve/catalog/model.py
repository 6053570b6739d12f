"""Typed view of the catalog YAML files: a tool and its inputs, exactly as the seeds list them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InputRules:
    """How fluxserve validates one input. Not part of the wire format.

    kind: string | integer | float | seed | boolean | select | multiselect | url | image
    """

    kind: str = "string"
    required: bool = False
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = None
    step: float | None = None  # a form's slider step (Tool/Detail); default: multiple_of, 1 or 0.1
    max_length: int | None = None
    file_field: str | None = None  # for kind=image: the multipart file part that may replace the URL

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InputRules:
        return cls(**(data or {}))


@dataclass(frozen=True)
class InputSpec:
    """One tool input: the seed's name, label, help, type, default and options, plus our rules."""

    name: str
    label: str
    help: str
    type: str
    default: Any
    options: list[dict[str, Any]] | None = None
    rules: InputRules = field(default_factory=InputRules)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        data = dict(data)
        rules = InputRules.from_dict(data.pop("rules", None))
        return cls(rules=rules, **data)

    @property
    def option_values(self) -> list[str]:
        return [str(option["value"]) for option in self.options or []]


@dataclass(frozen=True)
class ToolSpec:
    """A tool of the catalog, addressed as ``slugowner/slugproject``."""

    id: int
    tool: str
    slugowner: str
    slugproject: str
    description: str
    cover: str
    categories: list[str]
    tags: list[str]
    engine: str
    inputs: list[InputSpec]
    batch_vary: tuple[str, ...] | None = None
    """Inputs that may differ between tasks run in one batched pipeline call (e.g. prompt, seed);
    every other input must be equal. None: tasks of this tool are never batched. Not on the wire."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolSpec:
        data = dict(data)
        inputs = [InputSpec.from_dict(item) for item in data.pop("inputs")]
        vary = data.pop("batch_vary", None)
        return cls(inputs=inputs, batch_vary=None if vary is None else tuple(vary), **data)

    def input(self, name: str) -> InputSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    @property
    def file_fields(self) -> dict[str, str]:
        """Multipart file part name -> the URL input it stands in for."""
        return {spec.rules.file_field: spec.name for spec in self.inputs if spec.rules.file_field}
