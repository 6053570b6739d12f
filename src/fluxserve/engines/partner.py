"""Which backend runs a partner tool: the choice, the availability check and the engine it builds.

Partner tools (``black-forest-labs/flux-pro-1-1-ultra``, ``black-forest-labs/flux-2-pro-t2i``)
have no public weights, so each runs on one of:

* ``bfl``: Black Forest Labs' API with the operator's key (``BFL_API_KEY``);
* ``local``: an open-weights substitute on this machine (FLUX.2-dev for flux-2-pro-t2i, FLUX.1-dev
  for ultra), or ``local:<repo id>`` to name one (e.g. ``local:black-forest-labs/FLUX.2-klein-4B``);
* ``auto`` (the default): ``bfl`` when a key is set, otherwise not available;
* ``off``: not available.

The choice comes from ``EngineConfig.backends`` keyed by the tool's slug (``flux-2-pro-t2i``;
``FLUXSERVE_BACKEND_FLUX_2_PRO_T2I`` in the environment or ``.env``, read by Settings). Each partner
tool's own module (:mod:`fluxserve.engines.flux_pro_ultra`, :mod:`fluxserve.engines.flux2_pro`) holds
its :class:`PartnerTool` and its engine spec; this module imports no engine (the local engines are
named as ``"module:function"``), so there is no import cycle, and nothing here imports torch: the
API process calls the availability checks to answer Run with a helpful error instead of queueing a
task that can never run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fluxserve.engines.base import Engine, EngineConfig
from fluxserve.engines.bfl_engine import BflEngine, BflRoute
from fluxserve.engines.spec import EngineSpec, resolve
from fluxserve.engines.tiny_flux2 import TINY_FLUX2_REPOS
from fluxserve.errors import ToolUnavailableError

FLUX2_DEV = "black-forest-labs/FLUX.2-dev"
FLUX1_DEV = "black-forest-labs/FLUX.1-dev"
FLUX1_TEXT_REPOS = ("black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-Krea-dev")
"""The FLUX.1 text-to-image models of the shared model home (engines/home.py) that ultra may run on."""


@dataclass(frozen=True)
class PartnerTool:
    engine: str
    slug: str  # the tool's slugproject, the key in EngineConfig.backends
    bfl: BflRoute  # how the tool runs on BFL's API
    default_local: str
    family: str  # "FLUX.2" | "FLUX.1": which local repos can stand in
    local_factory: str  # "module:function"; (config, repo, tool, registry) -> Engine running it locally

    @property
    def bfl_model(self) -> str:
        return self.bfl.model

    @property
    def env_var(self) -> str:
        return "FLUXSERVE_BACKEND_" + self.slug.upper().replace("-", "_")


@dataclass(frozen=True)
class Backend:
    kind: str  # "bfl" | "local" | "none"
    repo: str = ""  # for local: the open model that runs
    reason: str = ""  # for none: why, and how to configure it


def backend_setting(config: EngineConfig, tool: PartnerTool) -> str:
    """The configured backend for ``tool``; keys may be the slug, owner/slug, engine or env-var style."""
    wanted = {tool.slug, f"black-forest-labs/{tool.slug}", tool.engine}
    for key, value in config.backends.items():
        normal = key.strip().lower().replace("_", "-")
        if normal.startswith("fluxserve-backend-"):
            normal = normal.removeprefix("fluxserve-backend-")
        if normal in wanted:
            return value.strip()
    return "auto"


def choose_backend(config: EngineConfig, tool: PartnerTool) -> Backend:
    """Decide how ``tool`` runs here; never imports torch, never touches the network."""
    setting = backend_setting(config, tool)
    kind, _, repo = setting.partition(":")
    kind = kind.strip().lower() or "auto"
    if kind == "auto":
        return Backend("bfl") if config.bfl_api_key else Backend("none", reason=_not_configured(tool))
    if kind == "bfl":
        if config.bfl_api_key:
            return Backend("bfl")
        return Backend(
            "none",
            reason=f"{tool.env_var}=bfl but no BFL API key is set: set BFL_API_KEY to the key of a Black "
            f"Forest Labs account, or set {tool.env_var}=local to run {tool.default_local} here instead.",
        )
    if kind == "local":
        return _local_backend(config, tool, repo.strip() or tool.default_local)
    if kind == "off":
        return Backend("none", reason=f"{tool.slug} is switched off on this server ({tool.env_var}=off).")
    return Backend(
        "none",
        reason=f"{tool.env_var}={setting!r} is not a backend; use bfl, local, local:<repo id>, or off.",
    )


def _not_configured(tool: PartnerTool) -> str:
    return (
        f"{tool.slug} is a partner model that this server has not been configured to run. The operator can "
        f"set BFL_API_KEY to run it through Black Forest Labs' API ({tool.bfl_model}), or set "
        f"{tool.env_var}=local to run the open {tool.default_local} weights on this machine instead."
    )


def _local_backend(config: EngineConfig, tool: PartnerTool, repo: str) -> Backend:
    if tool.family == "FLUX.2" and "FLUX.2" not in repo:
        return Backend(
            "none", reason=f"{tool.env_var}=local:{repo}: {tool.slug} can only run on a FLUX.2 model."
        )
    if tool.family == "FLUX.1" and repo not in FLUX1_TEXT_REPOS:
        allowed = " or ".join(FLUX1_TEXT_REPOS)
        return Backend(
            "none", reason=f"{tool.env_var}=local:{repo}: {tool.slug} can run locally on {allowed}."
        )
    missing = local_weights_problem(config, tool, repo)
    return Backend("none", reason=missing) if missing else Backend("local", repo=repo)


def local_weights_problem(config: EngineConfig, tool: PartnerTool, repo: str) -> str | None:
    """Why ``repo`` cannot be loaded from the configured weights, as far as is knowable cheaply."""
    choice = (config.weights or "hub").strip()
    if choice == "hub":
        return None  # downloaded (or found in the cache) at first use; failures name HF_TOKEN etc.
    if choice == "tiny":
        if tool.family == "FLUX.2" and repo not in TINY_FLUX2_REPOS:
            tiny = ", ".join(TINY_FLUX2_REPOS)
            return f"{tool.env_var}=local:{repo}: tiny test weights exist only for {tiny}."
        return None
    root = Path(choice).expanduser()
    if tool.family == "FLUX.1" and (root / repo / "transformer").is_dir():
        return None  # the home reads the shared encoders/VAE from any FLUX.1 folder
    if (root / repo / "model_index.json").is_file() or (tool.family == "FLUX.2" and is_tiny_root(root, repo)):
        return None
    return (
        f"{tool.slug} is set to run locally on {repo}, but {root / repo} holds no diffusers pipeline "
        f"(model_index.json). Put a copy of https://huggingface.co/{repo} there, or set "
        f"FLUXSERVE_WEIGHTS=hub, or set BFL_API_KEY and {tool.env_var}=bfl to use Black Forest Labs' API."
    )


def is_tiny_root(root: Path, repo: str) -> bool:
    """A folder of tiny test weights (made by ``fluxserve make-tiny``) gets tiny FLUX.2-dev on demand."""
    from fluxserve.engines.tiny import TINY_MARKER

    return repo in TINY_FLUX2_REPOS and any(
        (root / flux1 / TINY_MARKER).is_file() for flux1 in FLUX1_TEXT_REPOS
    )


# --- what a partner tool's spec calls ---------------------------------------------------------------


def unavailable_reason(config: EngineConfig, tool: PartnerTool) -> str | None:
    backend = choose_backend(config, tool)
    return backend.reason if backend.kind == "none" else None


def build_partner_engine(config: EngineConfig, tool: PartnerTool, registry: object = None) -> Engine:
    backend = choose_backend(config, tool)
    if backend.kind == "bfl":
        return BflEngine.from_config(config, tool.bfl)
    if backend.kind == "local":
        return resolve(tool.local_factory)(config, backend.repo, tool, registry)
    raise ToolUnavailableError(backend.reason)


def partner_engine_parts(
    tool: PartnerTool, module_name: str
) -> tuple[Callable[[EngineConfig], str | None], Callable[..., Engine], EngineSpec]:
    """A partner tool module's ``unavailable``, ``build_engine`` and ``SPEC``, all bound to ``tool``.

    The module assigns them to those three names (``unavailable, build_engine, SPEC =
    partner_engine_parts(TOOL, __name__)``): the spec names the functions as
    ``"<module_name>:build_engine"`` and ``"<module_name>:unavailable"``, which the registry resolves.
    """

    def unavailable(config: EngineConfig) -> str | None:
        return unavailable_reason(config, tool)

    def build_engine(config: EngineConfig, registry: object = None) -> Engine:
        return build_partner_engine(config, tool, registry)

    spec = EngineSpec(
        name=tool.engine,
        factory=f"{module_name}:build_engine",
        availability=f"{module_name}:unavailable",
    )
    return unavailable, build_engine, spec
