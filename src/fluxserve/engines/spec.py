"""One :class:`EngineSpec` per engine: everything the rest of fluxserve needs to know about it.

A catalog tool names its engine (``engine: flux1-krea-dev`` in its YAML). The engine's module
declares, at module level, ``SPEC = EngineSpec(...)``: the engine's name, the factory that builds it,
the availability check (when it may be unavailable), the model repos it runs on (what ``fluxserve
pull`` downloads, what the model home builds, which tiny models the test weights hold) and extra
builders for files beside those repos (e.g. the LoRA catalog's files). The registry, ``pull``, the
tiny weights and the availability check all read these specs; nothing else lists engines.

Specs are found by importing every module of the :mod:`fluxserve.engines` package and collecting
``SPEC``: adding a tool is one catalog YAML plus one engine module (plus its tests). Engine modules
must therefore stay cheap to import (torch and diffusers imported inside functions), since the API
process reads the specs to answer whether a tool can run; a test checks that discovery imports
neither.

Functions are named as ``"module:function"`` strings, so reading a spec never imports an engine's
heavy dependencies.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelRepo:
    """A model repository an engine runs on (a Hugging Face repo id, or ``<folder>/<id>`` locally)."""

    id: str  # "black-forest-labs/FLUX.1-Krea-dev"
    pipeline: str = "FluxPipeline"  # the diffusers class the FLUX.1 model home builds for it
    tiny_seed: int | None = None  # seed of its tiny transformer in the FLUX.1 tiny weights (None: none)


@dataclass(frozen=True)
class EngineSpec:
    """What fluxserve knows about one engine (the catalog's ``engine`` value)."""

    name: str
    factory: str  # "module:function"; called as factory(config, registry) -> Engine
    availability: str | None = None  # "module:function"; (config) -> reason it cannot run, or None
    repos: tuple[ModelRepo, ...] = ()  # FLUX.1 model-home repos: pulled, loaded, built tiny
    pull_extra: str | None = None  # "module:function"; (config, source) -> list[Path] downloaded too
    tiny_extra: str | None = None  # "module:function"; (root) -> None, adds files to the tiny weights


def resolve(reference: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function (imports the module)."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@functools.cache
def engine_specs() -> dict[str, EngineSpec]:
    """Every engine's spec by name, from the ``SPEC`` of each module in :mod:`fluxserve.engines`."""
    package = importlib.import_module("fluxserve.engines")
    specs: dict[str, EngineSpec] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, EngineSpec):
            continue
        if spec.name in specs:
            raise RuntimeError(f"two engine modules declare the engine name {spec.name!r}")
        specs[spec.name] = spec
    return specs


def model_repos() -> dict[str, ModelRepo]:
    """Every FLUX.1 model-home repo declared by an engine, by id, in a stable order."""
    repos: dict[str, ModelRepo] = {}
    for spec in engine_specs().values():
        for repo in spec.repos:
            repos.setdefault(repo.id, repo)
    return dict(sorted(repos.items()))


def model_repo(repo_id: str) -> ModelRepo:
    """The declared repo ``repo_id``, or a plain FLUX.1 text-to-image repo when no engine declares it."""
    return model_repos().get(repo_id) or ModelRepo(repo_id)
