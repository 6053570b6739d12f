"""Which tools exist and what they accept: one YAML per seed tool, and the validation rules.

Pure Python (PyYAML only) so that the client SDK can validate with the very same code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fluxserve.catalog.model import InputRules, InputSpec, ToolSpec
from fluxserve.catalog.yaml_files import load_yaml
from fluxserve.errors import ToolNotFoundError

__all__ = ["Catalog", "InputRules", "InputSpec", "ToolSpec"]


class Catalog:
    """The set of tools a fluxserve instance offers, keyed by ``owner/project``."""

    def __init__(self, tools: list[ToolSpec]) -> None:
        self._tools = {tool.tool: tool for tool in tools}

    @classmethod
    def builtin(cls) -> Catalog:
        """The five seed tools shipped inside the package."""
        folder = resources.files("fluxserve.catalog")
        return cls.from_files(
            Path(str(entry))
            for entry in folder.iterdir()
            if entry.name.endswith(".yaml") and "__" in entry.name
        )

    @classmethod
    def from_files(cls, paths) -> Catalog:
        tools = []
        for path in sorted(paths):
            with open(path, encoding="utf-8") as handle:
                tools.append(ToolSpec.from_dict(load_yaml(handle)))
        return cls(tools)

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, slug: str) -> ToolSpec:
        try:
            return self._tools[slug]
        except KeyError:
            raise ToolNotFoundError(
                f"Tool '{slug}' does not exist. Known tools: {', '.join(self._tools)}"
            ) from None
