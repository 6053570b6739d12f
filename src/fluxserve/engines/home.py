"""The FLUX.1 model home: one copy of the shared components, transformers loaded on demand.

FLUX.1-Krea-dev, FLUX.1-dev and FLUX.1-Kontext-dev share their text encoders (CLIP-L and T5-XXL),
tokenizers and VAE; only the transformers differ. The home loads the shared components once (from
the first model asked for), loads each transformer on first use, and builds each pipeline with the
plain constructor (``FluxPipeline(**components)``), never ``from_pipe``, which would cast the shared
modules to its own default dtype. Every pipeline gets its own scheduler instance: schedulers keep
per-run state (timesteps, step index) and must not be shared between threads.

Memory budget (``EngineConfig.model_memory_gb``, ``FLUXSERVE_MODEL_MEMORY_GB``): the total size of
the shared components plus the resident transformers, in GB (10^9 bytes) at the loaded dtype.
Before a transformer is loaded, least recently used transformers that are not running are evicted
until the new one is expected to fit (its expected size is its size when last loaded, or the size
of a resident transformer: all FLUX.1 transformers have the same shape). 0 means no budget. The
shared components are never evicted.

Concurrency: one lock per pipeline, so two worker threads never run the same pipeline at once
(different pipelines may run side by side: the shared modules are only read during inference).
With ``cpu_offload`` on CUDA, model CPU offload hooks are installed on the pipeline about to run,
and runs are serialised by one lock (the hooks of two pipelines would fight over shared modules).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fluxserve.engines.base import EngineConfig
from fluxserve.engines.prompt_cache import PromptCache
from fluxserve.engines.spec import model_repo
from fluxserve.engines.weights import FLUX_DEV, WeightsSource, load_or_explain, resolve_source

log = logging.getLogger(__name__)

HOME_KEY = "flux1-home"
"""The ``registry.shared`` key under which every FLUX.1 engine finds the one home."""

ADAPTERS_ACTIVE = "_fluxserve_adapters_active"
"""Pipeline attribute set by whoever enables LoRA adapters; ``use()`` disables them for the next user."""


def get_home(config: EngineConfig, registry: Any) -> ModelHome:
    """The process-wide FLUX.1 home, shared by all FLUX.1 engines through the registry."""
    return registry.shared(HOME_KEY, lambda: ModelHome(config))


def resolve_device(choice: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else unchanged."""
    import torch

    if choice in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def module_bytes(module: Any) -> int:
    """Bytes of a module's parameters and buffers (0 for tokenizers and schedulers)."""
    if not hasattr(module, "parameters"):
        return 0
    total = sum(p.numel() * p.element_size() for p in module.parameters())
    return total + sum(b.numel() * b.element_size() for b in module.buffers())


@dataclass
class _Slot:
    """One model repo: its lock, and (when resident) its transformer and pipeline."""

    lock: threading.Lock
    transformer: Any = None
    pipeline: Any = None
    size: int = 0  # bytes of the transformer when last loaded
    loads: int = 0  # how many times the transformer was loaded (a reload drops LoRA adapters)


class ModelHome:
    """Loads and keeps FLUX.1 pipelines that share one set of encoders, tokenizers and VAE."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._source: WeightsSource | None = None
        self._device: str | None = None
        self._dtype: Any = None
        self._shared: dict[str, Any] | None = None
        self._scheduler_config: Any = None
        self._shared_bytes = 0
        self._slots: dict[str, _Slot] = {}
        self._lru: OrderedDict[str, None] = OrderedDict()  # resident repos, least recent first
        self._lock = threading.RLock()  # guards the maps above, and loading
        self._offload_lock = threading.Lock()
        self._offloaded: str | None = None
        self.prompts = PromptCache(config.prompt_cache_size)  # the encoders are shared: so is the cache

    # ------------------------------------------------------------------ public

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.config.device)
        return self._device

    @property
    def dtype(self) -> Any:
        """bfloat16 on CUDA, float32 on the CPU (bf16 matmuls are slow and lossy there)."""
        if self._dtype is None:
            import torch

            self._dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        return self._dtype

    @property
    def source(self) -> WeightsSource:
        with self._lock:
            if self._source is None:
                self._source = resolve_source(self.config)
            return self._source

    @contextlib.contextmanager
    def use(self, repo: str) -> Iterator[Any]:
        """Hold ``repo``'s pipeline for one run: loads it if needed, locks it, marks it recently used.

        The pipeline comes with every LoRA adapter disabled (a LoRA engine enables its own adapters
        inside the block and sets ``ADAPTERS_ACTIVE``), so no caller sees another task's adapters.
        """
        slot = self._slot(repo)
        with slot.lock:
            pipeline = self._ensure_pipeline(repo, slot)
            if getattr(pipeline, ADAPTERS_ACTIVE, False):
                pipeline.disable_lora()
                setattr(pipeline, ADAPTERS_ACTIVE, False)
            with self._offload_guard(repo, pipeline):
                yield pipeline

    def shared_components(self) -> dict[str, Any]:
        """The shared modules (text encoders, tokenizers, VAE); loads them on first call."""
        return self._load_shared(None)

    def resident(self) -> list[str]:
        """Repos whose transformer is loaded, least recently used first."""
        with self._lock:
            return list(self._lru)

    def load_count(self, repo: str) -> int:
        """How many times ``repo``'s transformer has been loaded; changes when it was evicted and reloaded."""
        return self._slot(repo).loads

    def resident_bytes(self) -> int:
        with self._lock:
            return self._shared_bytes + sum(self._slots[repo].size for repo in self._lru)

    # ------------------------------------------------------------------ loading

    def _slot(self, repo: str) -> _Slot:
        with self._lock:
            return self._slots.setdefault(repo, _Slot(lock=threading.Lock()))

    def _ensure_pipeline(self, repo: str, slot: _Slot) -> Any:
        with self._lock:
            if slot.pipeline is not None:
                self._lru.move_to_end(repo)
                return slot.pipeline
        shared = self._load_shared(repo)
        self._make_room(repo, slot)
        transformer = self._load_transformer(repo)
        pipeline = self._build_pipeline(repo, shared, transformer)
        with self._lock:
            slot.transformer, slot.pipeline = transformer, pipeline
            slot.size, slot.loads = module_bytes(transformer), slot.loads + 1
            self._lru[repo] = None
            self._lru.move_to_end(repo)
        self._make_room(repo, None)  # the estimate may have been low
        return pipeline

    def _load_shared(self, repo: str | None) -> dict[str, Any]:
        with self._lock:
            if self._shared is None:
                self._shared = self._read_shared(repo or FLUX_DEV)
                self._shared_bytes = sum(module_bytes(module) for module in self._shared.values())
            return self._shared

    def _read_shared(self, repo: str) -> dict[str, Any]:
        from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
        from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

        started = time.perf_counter()
        source, dtype, device = self.source, self.dtype, self.device
        offload = self._offloading()

        def load(cls: Any, sub: str, dtype_key: str | None) -> Any:
            where = source.component_repo(repo, sub)
            kwargs = {**source.load_kwargs(), "subfolder": sub}
            if dtype_key:
                kwargs[dtype_key] = dtype

            def run() -> Any:
                obj = cls.from_pretrained(source.location(where), **kwargs)
                if dtype_key and not offload:
                    obj = obj.to(device)
                return obj.eval() if dtype_key else obj

            return load_or_explain(self.config, source, where, sub, run)

        shared = {
            "text_encoder": load(CLIPTextModel, "text_encoder", "dtype"),
            "text_encoder_2": load(T5EncoderModel, "text_encoder_2", "dtype"),
            "tokenizer": load(CLIPTokenizer, "tokenizer", None),
            "tokenizer_2": load(T5TokenizerFast, "tokenizer_2", None),
            "vae": load(AutoencoderKL, "vae", "torch_dtype"),
        }
        self._scheduler_config = load(FlowMatchEulerDiscreteScheduler, "scheduler", None).config
        log.info("loaded shared FLUX.1 components from %s in %.1fs", repo, time.perf_counter() - started)
        return shared

    def _load_transformer(self, repo: str) -> Any:
        from diffusers import FluxTransformer2DModel

        source = self.source
        started = time.perf_counter()

        def run() -> Any:
            model = FluxTransformer2DModel.from_pretrained(
                source.location(repo), subfolder="transformer", torch_dtype=self.dtype, **source.load_kwargs()
            )
            return (model if self._offloading() else model.to(self.device)).eval()

        model = load_or_explain(self.config, source, repo, "the transformer", run)
        log.info("loaded transformer of %s in %.1fs", repo, time.perf_counter() - started)
        return model

    def _build_pipeline(self, repo: str, shared: dict[str, Any], transformer: Any) -> Any:
        import diffusers
        from diffusers import FlowMatchEulerDiscreteScheduler

        cls = getattr(diffusers, model_repo(repo).pipeline)  # as the engine's spec declares it
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(self._scheduler_config)
        pipeline = cls(**shared, scheduler=scheduler, transformer=transformer)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    # ------------------------------------------------------------------ budget

    def _make_room(self, incoming: str | None, slot: _Slot | None) -> None:
        """Evict LRU transformers (not running) until the budget holds, counting ``incoming``."""
        budget = int(self.config.model_memory_gb * 1e9)
        if budget <= 0:
            return
        with self._lock:
            expected = 0
            if slot is not None:
                expected = slot.size or max((self._slots[r].size for r in self._lru), default=0)
            for victim in list(self._lru):
                if self.resident_bytes() + expected <= budget:
                    break
                if victim == incoming:
                    continue
                self._evict(victim)

    def _evict(self, repo: str) -> None:
        slot = self._slots[repo]
        if not slot.lock.acquire(blocking=False):
            return  # running right now; leave it
        try:
            log.info("evicting transformer of %s (memory budget %.1f GB)", repo, self.config.model_memory_gb)
            slot.transformer = slot.pipeline = None
            self._lru.pop(repo, None)
            if self._offloaded == repo:
                self._offloaded = None
        finally:
            slot.lock.release()
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    # ------------------------------------------------------------------ offload

    def _offloading(self) -> bool:
        return bool(self.config.cpu_offload) and self.device.startswith("cuda")

    @contextlib.contextmanager
    def _offload_guard(self, repo: str, pipeline: Any) -> Iterator[None]:
        if not self._offloading():
            yield
            return
        with self._offload_lock:
            if self._offloaded != repo:
                pipeline.enable_model_cpu_offload(device=self.device)
                self._offloaded = repo
            yield
