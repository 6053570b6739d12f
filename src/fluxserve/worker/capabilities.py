"""Which tools this worker can run: the engine registry's availability (engine built into this
fluxserve, backend configured — e.g. a BFL key for partner tools), the weights folder holding the
tool's model, and the operator's optional list (``FLUXSERVE_WORKER_TOOLS``). A worker claims only
the tools it can run, so a box without a key or without a model never takes such a task."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from fluxserve.catalog import Catalog
from fluxserve.engines.base import EngineConfig
from fluxserve.engines.registry import EngineRegistry


@dataclass(frozen=True)
class Capabilities:
    tools: list[str]
    unavailable: dict[str, str] = field(default_factory=dict)  # tool slug -> why not


def assess(catalog: Catalog, engines: EngineRegistry, only: Collection[str] = ()) -> Capabilities:
    tools: list[str] = []
    unavailable: dict[str, str] = {}
    for spec in catalog:
        if only and spec.tool not in only:
            reason: str | None = "not in this worker's FLUXSERVE_WORKER_TOOLS"
        else:
            reason = engines.unavailable_reason(spec.engine) or weights_missing(engines.config, spec.tool)
        if reason:
            unavailable[spec.tool] = reason
        else:
            tools.append(spec.tool)
    return Capabilities(tools, unavailable)


def weights_missing(config: EngineConfig, tool: str) -> str | None:
    """Why a local tool's model is not in the weights folder, or None. Hub and tiny weights are
    fetched or built on first use, so they count as available; so does a folder that does not exist
    at all — that is a misconfiguration, and the tasks fail with instructions instead of waiting."""
    from fluxserve.engines.weights import tools_repos

    choice = (config.weights or "hub").strip()
    try:
        repos = tools_repos([tool])  # the model repos its engine's spec declares
    except ValueError:  # a tool whose engine runs on no local repo (a partner tool, say)
        repos = []
    if choice in ("hub", "tiny") or not repos:
        return None
    root = Path(choice).expanduser()
    if not root.is_dir():  # a misconfiguration, not a partial box: tasks fail and say how to fix it
        return None
    missing = [repo for repo in repos if not (root / repo / "transformer").is_dir()]
    if missing:
        return f"the weights folder {root} (FLUXSERVE_WEIGHTS) has no {', '.join(missing)}/transformer"
    return None
