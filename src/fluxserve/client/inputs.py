"""Client-side input checking and the body of a Run request.

Inputs are validated with the server's own code (``fluxserve.catalog.coerce.validate_inputs``):
for the built-in tools with the catalog's full rules, for any other tool (the hosted Wiro API
has many) with rules inferred from Tool/Detail's input types. Local files given for image inputs
become multipart file parts.
"""

from __future__ import annotations

import dataclasses
import functools
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fluxserve.catalog import Catalog, InputRules, InputSpec, ToolSpec
from fluxserve.catalog.coerce import to_wire_string, validate_inputs
from fluxserve.client.errors import ValidationFailed
from fluxserve.client.models import Tool
from fluxserve.errors import FieldError, NotFoundError, ValidationError

FileLike = str | os.PathLike | bytes | IO[bytes] | tuple[str, bytes]
"""A path, raw bytes, an open binary file, or ``(filename, bytes)``."""

_KIND_BY_TYPE = {
    "number": "integer",
    "float": "float",
    "range": "float",
    "select": "select",
    "multiselect": "multiselect",
    "file": "image",
    "image": "image",
    "fileinput": "image",
}


@dataclass(frozen=True)
class FilePart:
    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class RunPayload:
    """``fields`` go as form fields (or JSON when there are no files), ``files`` as file parts."""

    fields: dict[str, str]
    files: dict[str, FilePart] = field(default_factory=dict)


@functools.cache
def _builtin_catalog() -> Catalog:
    return Catalog.builtin()


def builtin_spec(tool_name: str) -> ToolSpec | None:
    """The catalog entry of a built-in tool, or None for any other tool."""
    try:
        return _builtin_catalog().get(tool_name)
    except NotFoundError:
        return None


def spec_from_tool(tool: Tool) -> ToolSpec:
    """A ToolSpec for a tool known only from Tool/Detail: rules inferred from each input's type."""
    inputs = []
    for item in tool.inputs:
        kind = _KIND_BY_TYPE.get(item.type, "string")
        if kind == "float" and _whole(item.min, item.max, item.step):
            kind = "integer"  # a range of whole numbers (steps, width): send 4, not 4.0
        file_field = _file_part_name(item.name) if kind == "image" or item.name.endswith("Url") else None
        if file_field and kind == "string":
            kind = "image"
        rules = InputRules(kind=kind, file_field=file_field, min=item.min, max=item.max)
        inputs.append(
            InputSpec(item.name, item.label, item.help, item.type, item.default, item.options or None, rules)
        )
    return _make_tool_spec(tool, inputs)


def _whole(*numbers: float | None) -> bool:
    given = [number for number in numbers if number is not None]
    return bool(given) and all(float(number).is_integer() for number in given)


def _file_part_name(input_name: str) -> str:
    """``inputImageUrl`` -> ``inputImage``: Wiro's convention for the upload that replaces a URL."""
    return input_name[: -len("Url")] if input_name.endswith("Url") and len(input_name) > 3 else input_name


def _make_tool_spec(tool: Tool, inputs: list[InputSpec]) -> ToolSpec:
    """Fill every ToolSpec field by name, so this keeps working when the catalog model grows."""
    known: dict[str, Any] = {
        "tool": tool.name,
        "slugowner": tool.slugowner,
        "slugproject": tool.slugproject,
        "description": tool.description,
        "cover": tool.cover,
        "categories": list(tool.categories),
        "tags": [],
        "engine": "",
        "inputs": inputs,
    }
    values = {}
    for spec_field in dataclasses.fields(ToolSpec):
        if spec_field.name in known:
            values[spec_field.name] = known[spec_field.name]
        elif spec_field.default is dataclasses.MISSING and spec_field.default_factory is dataclasses.MISSING:
            values[spec_field.name] = 0 if spec_field.type in ("int", int) else ""
    return ToolSpec(**values)


def prepare_run(
    spec: ToolSpec,
    inputs: Mapping[str, Any],
    files: Mapping[str, FileLike] | None = None,
    callback_url: str | None = None,
    *,
    full_rules: bool = True,
    check: bool = True,
) -> RunPayload:
    """Check ``inputs`` against ``spec`` and build the Run body; raise ValidationFailed naming fields.

    ``full_rules`` is False for inferred specs: then only the inputs actually given are checked,
    because a hosted tool's defaults are not necessarily valid under inferred rules. ``check`` False
    skips validation altogether (the server still validates).
    """
    unknown = [name for name in inputs if spec.input(name) is None]
    if unknown and check:
        known = ", ".join(item.name for item in spec.inputs)
        problems = [FieldError(name, f"is not an input of {spec.tool} (inputs: {known})") for name in unknown]
        raise _failed(problems)
    fields: dict[str, str] = {}
    parts: dict[str, FilePart] = {name: load_file(value) for name, value in (files or {}).items()}
    for name, value in inputs.items():
        if value is None:
            continue
        input_spec = spec.input(name)
        file_field = input_spec.rules.file_field if input_spec else None
        if file_field and _is_local_file(value):
            parts[file_field] = load_file(value)
        elif isinstance(value, bytes):
            parts[file_field or name] = load_file(value)
        else:
            fields[name] = to_wire_string(value)
    if check:
        given = [item for item in spec.inputs if item.name in fields]
        checked = spec if full_rules else dataclasses.replace(spec, inputs=given)
        try:
            validate_inputs(checked, fields, frozenset(parts))
        except ValidationError as exc:
            raise _failed(exc.errors) from None
    if callback_url:
        fields["callbackUrl"] = callback_url
    return RunPayload(fields=fields, files=parts)


def _failed(problems: list[FieldError]) -> ValidationFailed:
    message = "invalid input: " + "; ".join(str(item) for item in problems)
    return ValidationFailed(message, fields=problems, status=0)


def _is_local_file(value: Any) -> bool:
    if isinstance(value, os.PathLike):
        return True
    if isinstance(value, str) and value and "://" not in value:
        return Path(value).expanduser().is_file()
    return False


def load_file(value: FileLike) -> FilePart:
    """Read a file input into memory (images are small; reading up front lets retries resend it)."""
    if isinstance(value, tuple):
        filename, content = value
        return FilePart(filename, bytes(content), _guess_type(filename))
    if isinstance(value, bytes):
        return FilePart("upload.png", value, "application/octet-stream")
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ValidationFailed(f"cannot read file {str(path)!r}: {exc.strerror or exc}") from None
        return FilePart(path.name, content, _guess_type(path.name))
    content = value.read()
    filename = Path(getattr(value, "name", "upload.png")).name
    return FilePart(filename, content, _guess_type(filename))


def _guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
