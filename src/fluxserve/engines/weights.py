"""Where FLUX.1 weights come from, per ``EngineConfig.weights``, and ``fluxserve pull``.

* ``"hub"``: the Hugging Face repos (``black-forest-labs/FLUX.1-Krea-dev`` ...), cached under
  ``<data_dir>/weights/hub``. The FLUX.1 repos are **gated**: accept each model's licence on its
  Hugging Face page with your account, then give the worker a read token as ``HF_TOKEN``
  (``huggingface_hub`` reads it from the environment). ``fluxserve pull`` downloads ahead of time.
* ``"tiny"``: tiny random weights under ``<data_dir>/weights/tiny``, built on first use
  (:func:`fluxserve.engines.tiny.build_tiny_weights`); for tests and offline demos.
* anything else: a local folder laid out like the hub, one diffusers pipeline folder per repo::

      /folder/black-forest-labs/FLUX.1-Krea-dev/{model_index.json,scheduler,text_encoder,...}
      /folder/black-forest-labs/FLUX.1-dev/...
      /folder/black-forest-labs/FLUX.1-Kontext-dev/...
      /folder/<lora owner>/<lora repo>/<weight file>.safetensors

  Text encoders, tokenizers and VAE are identical across the three repos, so a folder may hold
  them in one repo folder only; the other repo folders then need only ``transformer/``.

Any failure to get weights becomes :class:`WeightsUnavailableError` whose message says how to
provide them; no raw traceback reaches the user.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fluxserve.engines.base import EngineConfig
from fluxserve.errors import WeightsUnavailableError

if TYPE_CHECKING:
    from fluxserve.engines.spec import EngineSpec

log = logging.getLogger(__name__)

T = TypeVar("T")

KREA_DEV = "black-forest-labs/FLUX.1-Krea-dev"
FLUX_DEV = "black-forest-labs/FLUX.1-dev"
KONTEXT_DEV = "black-forest-labs/FLUX.1-Kontext-dev"
"""Repo ids of the FLUX.1 models; which engine runs on which is declared in the engines' specs."""

SHARED_SUBFOLDERS = ("scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae")
PIPELINE_PATTERNS = ["model_index.json", *(f"{sub}/*" for sub in (*SHARED_SUBFOLDERS, "transformer"))]
"""What ``pull`` fetches of a pipeline repo: the diffusers folders, not the single-file checkpoints."""

_tiny_lock = threading.Lock()


@dataclass(frozen=True)
class WeightsSource:
    """Resolved origin of weights: the hub (with a cache dir) or a local root folder."""

    kind: str  # "hub" | "folder"
    root: Path | None = None  # the folder holding <owner>/<repo>/ (kind == "folder")
    cache_dir: Path | None = None  # hub cache (kind == "hub")
    label: str = ""  # what the user configured, for messages

    def location(self, repo: str) -> str:
        """What to pass to ``from_pretrained`` for ``repo``."""
        return repo if self.kind == "hub" else str(self.root / repo)

    def load_kwargs(self) -> dict[str, Any]:
        return {"cache_dir": str(self.cache_dir)} if self.kind == "hub" else {}

    def component_repo(self, repo: str, subfolder: str) -> str:
        """The repo to read a shared component from: ``repo`` itself, or (in a folder) any FLUX.1
        repo that has it, since the encoders/tokenizers/VAE are identical across the three."""
        if self.kind == "hub" or (self.root / repo / subfolder).is_dir():
            return repo
        for other in flux1_repos():
            if (self.root / other / subfolder).is_dir():
                return other
        return repo


def resolve_source(config: EngineConfig) -> WeightsSource:
    """Turn ``config.weights`` into a :class:`WeightsSource`; builds the tiny weights if needed."""
    choice = (config.weights or "hub").strip()
    if choice == "hub":
        return WeightsSource("hub", cache_dir=config.weights_dir / "hub", label="hub")
    if choice == "tiny":
        from fluxserve.engines.tiny import build_tiny_weights

        root = config.weights_dir / "tiny"
        with _tiny_lock:
            build_tiny_weights(root)
        return WeightsSource("folder", root=root, label="tiny")
    root = Path(choice).expanduser()
    if not root.is_dir():
        raise WeightsUnavailableError(
            f"The weights folder {root} (FLUXSERVE_WEIGHTS) does not exist. "
            + _how_to_provide(config, FLUX_DEV)
        )
    return WeightsSource("folder", root=root.resolve(), label=str(root))


def _how_to_provide(config: EngineConfig, repo: str) -> str:
    return (
        f"To provide the weights of {repo}, either (1) accept its licence at https://huggingface.co/{repo} "
        "with your Hugging Face account, set HF_TOKEN to a read token for the worker and run "
        f"`fluxserve pull` once (cache: {config.weights_dir / 'hub'}), with FLUXSERVE_WEIGHTS=hub; or "
        f"(2) set FLUXSERVE_WEIGHTS=/folder to a local copy laid out as /folder/{repo}/ "
        "(a diffusers pipeline folder: model_index.json, transformer/, vae/, text_encoder/, ...); "
        "or (3) set FLUXSERVE_WEIGHTS=tiny to run tiny random test weights."
    )


def weights_error(
    config: EngineConfig, source: WeightsSource, repo: str, what: str, exc: BaseException
) -> str:
    """A message for the user: what failed, why (one line), and how to provide the weights."""
    reason = _short_reason(exc)
    where = "the Hugging Face Hub" if source.kind == "hub" else f"the folder {source.root / repo}"
    return f"Could not load {what} of {repo} from {where}: {reason}. " + _how_to_provide(config, repo)


def _short_reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "GatedRepoError":
        return "the repository is gated and this machine has no access (no HF_TOKEN, or licence not accepted)"
    if name in ("RepositoryNotFoundError", "RevisionNotFoundError"):
        return "the repository was not found (or it is gated and HF_TOKEN is missing)"
    if name in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or "connect" in str(exc).lower():
        return "the files are not in the local cache and the Hugging Face Hub cannot be reached"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    return text[:300]


def load_or_explain(
    config: EngineConfig, source: WeightsSource, repo: str, what: str, load: Callable[[], T]
) -> T:
    """Run ``load()``; turn any failure into :class:`WeightsUnavailableError` with instructions."""
    try:
        return load()
    except WeightsUnavailableError:
        raise
    except Exception as exc:  # OSError, hub errors, JSON/safetensors errors: all mean "no usable weights"
        log.warning("loading %s of %s failed: %r", what, repo, exc)
        raise WeightsUnavailableError(weights_error(config, source, repo, what, exc)) from exc


def flux1_repos() -> list[str]:
    """Every FLUX.1 model-home repo an engine declares (they share encoders, tokenizers and VAE)."""
    from fluxserve.engines.spec import model_repos

    return list(model_repos())


def tool_specs() -> dict[str, EngineSpec]:
    """Catalog tool slug -> the spec of its engine, for the tools whose engine runs on local repos."""
    from fluxserve.catalog import Catalog
    from fluxserve.engines.spec import engine_specs

    specs = engine_specs()
    found = {tool.tool: specs.get(tool.engine) for tool in Catalog.builtin()}
    return {tool: spec for tool, spec in found.items() if spec is not None and spec.repos}


def tools_repos(tools: Iterable[str] | None) -> list[str]:
    """Model repos needed by ``tools`` (all local FLUX.1 tools when empty), in a stable order."""
    known = tool_specs()
    selected = list(tools or known)
    unknown = [tool for tool in selected if tool not in known]
    if unknown:
        raise ValueError(
            f"no local weights to pull for {', '.join(unknown)}; known tools: {', '.join(known)}"
        )
    repos = [repo.id for tool in selected for repo in known[tool].repos]
    return list(dict.fromkeys(repos))


def pull_weights(config: EngineConfig, tools: Iterable[str] | None = None) -> list[Path]:
    """``fluxserve pull [TOOL...]``: download the tools' pipelines (and catalog LoRAs) into the cache.

    Uses ``snapshot_download`` (tqdm progress bars on stderr) into ``<data_dir>/weights/hub``, the
    cache that FLUXSERVE_WEIGHTS=hub loads from. Returns the local snapshot folders and LoRA files.
    With FLUXSERVE_WEIGHTS=tiny it builds the tiny weights instead; with a local folder there is
    nothing to download. Raises WeightsUnavailableError with instructions on failure.
    """
    known = tool_specs()
    selected = list(tools or known)
    repos = tools_repos(selected)
    source = resolve_source(config)
    if source.kind == "folder":
        log.info("weights come from %s; nothing to download", source.root)
        return [source.root / repo for repo in repos]
    from huggingface_hub import snapshot_download

    from fluxserve.engines.spec import resolve

    paths: list[Path] = []
    for repo in repos:
        log.info("downloading %s into %s", repo, source.cache_dir)
        folder = load_or_explain(
            config,
            source,
            repo,
            "the pipeline",
            lambda repo=repo: snapshot_download(
                repo, cache_dir=source.cache_dir, allow_patterns=PIPELINE_PATTERNS
            ),
        )
        paths.append(Path(folder))
    for spec in dict.fromkeys(known[tool] for tool in selected):  # e.g. the LoRA catalog's files
        if spec.pull_extra:
            paths.extend(resolve(spec.pull_extra)(config, source))
    return paths


def lora_file(config: EngineConfig, source: WeightsSource, repo: str, weight_name: str) -> Path:
    """Local path of a catalog LoRA file: ``<root>/<repo>/<weight_name>`` or downloaded from the hub."""
    if source.kind == "folder":
        path = source.root / repo / weight_name
        if not path.is_file():
            raise WeightsUnavailableError(
                f"The LoRA file {path} is missing. Put {weight_name} from https://huggingface.co/{repo} "
                "there, or use FLUXSERVE_WEIGHTS=hub to download it (tiny weights include tiny LoRAs)."
            )
        return path
    from huggingface_hub import hf_hub_download, list_repo_files
    from huggingface_hub.errors import EntryNotFoundError

    def download() -> Path:
        try:
            return Path(hf_hub_download(repo, weight_name, cache_dir=source.cache_dir))
        except EntryNotFoundError:
            # The catalog's file name is a convention; fall back to the repo's only .safetensors file.
            files = [name for name in list_repo_files(repo) if name.endswith(".safetensors")]
            if len(files) != 1:
                raise
            return Path(hf_hub_download(repo, files[0], cache_dir=source.cache_dir))

    return load_or_explain(config, source, repo, f"the LoRA file {weight_name}", download)
