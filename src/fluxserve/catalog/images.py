"""Image inputs as one reference type, from the API to the engine.

A Run request may give an image input three ways: a multipart file part (``inputImage``), the name
of a file uploaded earlier with ``/v1/File/Upload``, or an http(s) URL. The API resolves all three
into an :class:`ImageRef` (``api/images.py``): a stored file (``storage_key``) or a URL to fetch. The
task keeps the stored ones' keys (``files``) and the URLs among its values, and
:func:`image_refs` turns them back into the same references for the worker, which adds each stored
file's local ``path``; the engine then opens a path or fetches a URL, and never has to guess what a
value is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxserve.catalog.model import ToolSpec


@dataclass(frozen=True)
class ImageRef:
    """One image input: a stored file (sent with the task or uploaded earlier) or a URL to fetch."""

    input: str  # the tool input it fills, e.g. "inputImageUrl"
    url: str = ""  # an http(s) URL, fetched by the worker through the safe fetcher
    storage_key: str = ""  # a file in the task storage
    path: Path | None = None  # the stored file on the worker's disk (set by the worker)

    @property
    def stored(self) -> bool:
        return bool(self.storage_key or self.path)


def image_inputs(tool: ToolSpec) -> list[str]:
    """The tool's image inputs, in the catalog's order."""
    return [spec.name for spec in tool.inputs if spec.rules.kind == "image"]


def image_refs(tool: ToolSpec, values: Mapping[str, Any], stored: Mapping[str, str]) -> dict[str, ImageRef]:
    """The references of a stored task: ``stored`` (input -> storage key) wins over a URL value.

    Inputs given neither way (an optional image left empty) have no reference.
    """
    refs: dict[str, ImageRef] = {}
    for name in image_inputs(tool):
        if stored.get(name):
            refs[name] = ImageRef(name, storage_key=stored[name])
        elif values.get(name):
            refs[name] = ImageRef(name, url=str(values[name]))
    return refs
