"""``wiro/text-to-image-flux-lora-fast`` (catalog engine ``flux1-dev-lora``): FLUX.1-dev with LoRAs.

* Catalog LoRAs (``selectedLoraModel``, see :mod:`fluxserve.catalog.lora`)
  combine, each at the scale from the request field named after its scale setting id; their
  trigger words go in front of the prompt unless already present. No selection: the base model.
* ``selectedLoraModelPrivateUrl``: a ``.safetensors`` LoRA downloaded once, cached by content hash
  (:mod:`fluxserve.engines.lora_files`), applied at scale 1.0 (the seed offers no scale setting for it).
* Adapters stay loaded in the FLUX.1-dev transformer of the shared home across tasks; a task
  switches with ``set_adapters`` (milliseconds) instead of rebuilding the pipeline. At most
  ``config.max_loaded_loras`` adapters stay loaded (least recently used deleted first). Base-model
  tasks run with all adapters disabled, and every task sets exactly its own adapters, so no task
  sees a previous task's adapters. If the home evicted and reloaded the transformer, the adapter
  bookkeeping starts over.

Seeds, progress and kill as in :mod:`fluxserve.engines.flux_run`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxserve.catalog.lora import (
    PRIVATE_URL_FIELD,
    SELECT_FIELD,
    LoraEntry,
    lora_entry,
    prompt_with_triggers,
)
from fluxserve.engines.base import (
    BatchItem,
    Engine,
    EngineConfig,
    EngineJob,
    GenerationResult,
    StepCallback,
)
from fluxserve.engines.flux_run import TextToImage, run_text_to_image, run_text_to_image_batch
from fluxserve.engines.home import ADAPTERS_ACTIVE, ModelHome, get_home
from fluxserve.engines.lora_files import PrivateLoraCache, load_checked_lora
from fluxserve.engines.spec import EngineSpec, ModelRepo
from fluxserve.engines.weights import FLUX_DEV, WeightsSource, lora_file
from fluxserve.errors import TaskFailure, TaskKilled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter a task needs: its name in the pipeline, its file, its scale, how to name it to users."""

    name: str
    path: Path
    scale: float
    what: str


class AdapterSet:
    """The adapters loaded into one transformer, in LRU order. Used only under the pipeline's lock."""

    def __init__(self, max_loaded: int) -> None:
        self.max_loaded = max(1, max_loaded)
        self._transformer: Any = None
        self._loaded: OrderedDict[str, None] = OrderedDict()

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    def activate(self, pipe: Any, specs: list[AdapterSpec]) -> None:
        """Make exactly ``specs`` active at their scales (none: all adapters disabled)."""
        if pipe.transformer is not self._transformer:  # first use, or the home reloaded it
            self._transformer, self._loaded = pipe.transformer, OrderedDict()
        if not specs:
            if self._loaded:
                pipe.disable_lora()
            return
        needed = {spec.name for spec in specs}
        for spec in specs:
            if spec.name not in self._loaded:
                self._make_room(pipe, needed)
                self._load(pipe, spec)
            self._loaded.move_to_end(spec.name)
        pipe.enable_lora()
        pipe.set_adapters([spec.name for spec in specs], adapter_weights=[spec.scale for spec in specs])
        setattr(pipe, ADAPTERS_ACTIVE, True)  # the home disables them for the pipeline's next user

    def _make_room(self, pipe: Any, needed: set[str]) -> None:
        for name in list(self._loaded):
            if len(self._loaded) < self.max_loaded:
                return
            if name not in needed:
                log.info("unloading LoRA adapter %s (LRU, %d kept)", name, self.max_loaded)
                pipe.delete_adapters(name)
                del self._loaded[name]

    def _load(self, pipe: Any, spec: AdapterSpec) -> None:
        checked = load_checked_lora(spec.path, pipe.transformer, spec.what)
        try:
            pipe.load_lora_into_transformer(
                checked.state_dict,
                network_alphas=checked.network_alphas,
                transformer=pipe.transformer,
                adapter_name=spec.name,
                _pipeline=pipe,
            )
        except Exception as exc:
            if spec.name in _adapter_names(pipe):
                pipe.delete_adapters(spec.name)
            raise TaskFailure(f"{spec.what}: the LoRA could not be applied ({exc}).") from exc
        self._loaded[spec.name] = None
        log.info("loaded LoRA adapter %s from %s", spec.name, spec.path)


def _adapter_names(pipe: Any) -> set[str]:
    return {name for names in pipe.get_list_adapters().values() for name in names}


@dataclass(frozen=True)
class LoraPlan:
    """What ``preprocess`` resolved for one task: its adapters (files on disk) and the prompt to run."""

    adapters: list[AdapterSpec]
    prompt: str


class FluxLoraEngine(Engine[LoraPlan]):
    """FLUX.1-dev from the shared home, with catalog and private-URL LoRA adapters."""

    def __init__(self, config: EngineConfig, home: ModelHome) -> None:
        self.config = config
        self.home = home
        self.adapters = AdapterSet(config.max_loaded_loras)
        self.private = PrivateLoraCache(config)

    def preprocess(self, job: EngineJob) -> LoraPlan:
        """Resolve the selected LoRAs to local files (downloading if needed) and build the prompt.

        The catalog already checked the selection and put each selected LoRA's scale in
        ``job.params`` under its setting id (:func:`fluxserve.catalog.lora.apply_lora_rules`).
        """
        entries = [lora_entry(lora_id) for lora_id in job.params[SELECT_FIELD]]
        specs = [self._catalog_spec(entry, job.params[entry.scale.id]) for entry in entries]
        url = job.params[PRIVATE_URL_FIELD]
        if url:
            path, digest = self.private.get(url, should_stop=job.should_stop)
            specs.append(AdapterSpec(f"url-{digest[:16]}", path, 1.0, PRIVATE_URL_FIELD))
        return LoraPlan(specs, prompt_with_triggers(job.params["prompt"], entries))

    def _catalog_spec(self, entry: LoraEntry, scale: float) -> AdapterSpec:
        path = lora_file(self.config, self.home.source, entry.repo, entry.weight_name)
        return AdapterSpec(f"catalog-{entry.id}", path, scale, f"{SELECT_FIELD} '{entry.id}' ({entry.label})")

    def generate(self, job: EngineJob, prepared: LoraPlan, progress: StepCallback) -> GenerationResult:
        request = TextToImage.from_params(job.params, prompt=prepared.prompt)
        with self.home.use(FLUX_DEV) as pipe:
            self.adapters.activate(pipe, prepared.adapters)
            images = run_text_to_image(pipe, self.home.device, request, progress, self.home.prompts)
        return GenerationResult(images=images, debugoutput=_describe(prepared.adapters, request))

    def batch_signature(self, job: EngineJob, prepared: LoraPlan) -> Hashable | None:
        """Equal loop shape and exactly the same adapters (files and scales): one adapter state."""
        adapters = tuple((spec.name, str(spec.path), spec.scale) for spec in prepared.adapters)
        return (TextToImage.from_params(job.params).loop_shape(), adapters)

    def generate_batch(self, items: list[BatchItem]) -> list[GenerationResult | TaskKilled]:
        plans: list[LoraPlan] = [item.prepared for item in items]
        requests = [
            TextToImage.from_params(item.job.params, prompt=plan.prompt)
            for item, plan in zip(items, plans, strict=True)
        ]
        with self.home.use(FLUX_DEV) as pipe:
            self.adapters.activate(pipe, plans[0].adapters)
            results = run_text_to_image_batch(
                pipe, self.home.device, requests, [item.progress for item in items], self.home.prompts
            )
        return [
            result
            if isinstance(result, TaskKilled)
            else GenerationResult(result, _describe(plan.adapters, request))
            for result, plan, request in zip(results, plans, requests, strict=True)
        ]


def _describe(specs: list[AdapterSpec], request: TextToImage) -> str:
    loras = ", ".join(f"{spec.name} at scale {spec.scale:g}" for spec in specs) or "none (base model)"
    seeds = ", ".join(str(seed) for seed in request.image_seeds())
    return f"LoRAs: {loras}; prompt used: {request.prompt!r}; seeds: {seeds}"


def build_lora_engine(config: EngineConfig, registry: Any) -> Engine:
    """Factory for ``flux1-dev-lora`` (wiro/text-to-image-flux-lora-fast)."""
    return FluxLoraEngine(config, get_home(config, registry))


def catalog_lora_files(config: EngineConfig, source: WeightsSource) -> list[Path]:
    """``fluxserve pull`` of this tool also fetches every catalog LoRA's file."""
    from fluxserve.catalog.lora import load_lora_catalog

    return [lora_file(config, source, entry.repo, entry.weight_name) for entry in load_lora_catalog()]


SPEC = EngineSpec(
    name="flux1-dev-lora",
    factory="fluxserve.engines.flux_lora:build_lora_engine",
    repos=(ModelRepo(FLUX_DEV, tiny_seed=12),),
    pull_extra="fluxserve.engines.flux_lora:catalog_lora_files",
    tiny_extra="fluxserve.engines.tiny:build_tiny_loras",
)
