"""Engine specs: one per engine, found by discovery, read by the registry, pull and the tiny weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fluxserve.catalog import Catalog
from fluxserve.engines.base import EngineConfig
from fluxserve.engines.registry import EngineRegistry
from fluxserve.engines.spec import engine_specs, model_repo, model_repos
from fluxserve.engines.tiny import tiny_models
from fluxserve.engines.weights import tools_repos


def test_every_catalog_tool_has_an_engine_spec() -> None:
    specs = engine_specs()
    for tool in Catalog.builtin():
        assert tool.engine in specs, tool.tool
    assert set(specs) == {tool.engine for tool in Catalog.builtin()}


def test_model_repos_come_from_the_specs() -> None:
    assert list(model_repos()) == [
        "black-forest-labs/FLUX.1-Kontext-dev",
        "black-forest-labs/FLUX.1-Krea-dev",
        "black-forest-labs/FLUX.1-dev",
    ]
    assert model_repo("black-forest-labs/FLUX.1-Kontext-dev").pipeline == "FluxKontextPipeline"
    assert model_repo("someone/unknown").pipeline == "FluxPipeline"
    assert {repo.id: repo.tiny_seed for repo in tiny_models()} == {
        "black-forest-labs/FLUX.1-Krea-dev": 11,
        "black-forest-labs/FLUX.1-dev": 12,
        "black-forest-labs/FLUX.1-Kontext-dev": 13,
    }


def test_pull_maps_tools_to_their_specs_repos() -> None:
    assert tools_repos(["wiro/text-to-image-flux-lora-fast"]) == ["black-forest-labs/FLUX.1-dev"]
    with pytest.raises(ValueError, match="no local weights to pull for black-forest-labs/flux-2-pro-t2i"):
        tools_repos(["black-forest-labs/flux-2-pro-t2i"])


def test_unknown_engine_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    assert EngineRegistry(EngineConfig(data_dir=tmp_path)).unavailable_reason("nope") == (
        "this fluxserve build has no engine 'nope' yet"
    )


def test_reading_the_specs_imports_neither_torch_nor_diffusers() -> None:
    """The API process asks the specs whether a tool can run; that must stay cheap."""
    code = (
        "import sys; from fluxserve.engines.spec import engine_specs; specs = engine_specs(); "
        "from fluxserve.engines.registry import EngineRegistry; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "print(len(specs), heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "5 []"


def test_partner_backend_choice_imports_no_engine_that_imports_it() -> None:
    code = (
        "import sys; import fluxserve.engines.partner; "
        "print(sorted(m for m in sys.modules if m in ("
        "'fluxserve.engines.flux2_local', 'fluxserve.engines.ultra_local', "
        "'fluxserve.engines.flux_pro_ultra', 'fluxserve.engines.flux2_pro')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
