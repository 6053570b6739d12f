"""The FLUX.1 model home: shared components once, lazy transformers, LRU budget, per-pipeline locks."""

from __future__ import annotations

import threading
from pathlib import Path

from fluxserve.engines.base import EngineConfig
from fluxserve.engines.home import ModelHome, get_home, module_bytes
from fluxserve.engines.registry import EngineRegistry
from fluxserve.engines.weights import FLUX_DEV, KONTEXT_DEV, KREA_DEV


def _config(root: Path, tmp_path: Path, **extra) -> EngineConfig:
    return EngineConfig(data_dir=tmp_path, weights=str(root), device="cpu", **extra)


def test_three_pipelines_share_encoders_tokenizers_and_vae(tiny_weights_dir: Path, tmp_path: Path) -> None:
    import torch

    home = ModelHome(_config(tiny_weights_dir, tmp_path))
    assert home.resident() == []  # nothing loaded before first use
    pipelines = []
    for repo in (KREA_DEV, FLUX_DEV, KONTEXT_DEV):
        with home.use(repo) as pipeline:
            pipelines.append(pipeline)
    krea, dev, kontext = pipelines
    assert type(kontext).__name__ == "FluxKontextPipeline" and type(dev).__name__ == "FluxPipeline"
    for name in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae"):
        assert getattr(krea, name) is getattr(dev, name) is getattr(kontext, name), name
    t5_storage = {p.text_encoder_2.shared.weight.data_ptr() for p in pipelines}
    assert len(t5_storage) == 1
    assert len({id(p.transformer) for p in pipelines}) == 3
    assert len({id(p.scheduler) for p in pipelines}) == 3  # schedulers keep per-run state
    assert krea.vae.dtype == torch.float32  # CPU: float32
    assert home.resident() == [KREA_DEV, FLUX_DEV, KONTEXT_DEV]


def test_registry_gives_every_engine_the_same_home(tiny_weights_dir: Path, tmp_path: Path) -> None:
    registry = EngineRegistry(_config(tiny_weights_dir, tmp_path))
    assert get_home(registry.config, registry) is get_home(registry.config, registry)


def test_budget_evicts_least_recently_used_transformer(tiny_weights_dir: Path, tmp_path: Path) -> None:
    probe = ModelHome(_config(tiny_weights_dir, tmp_path))
    with probe.use(KREA_DEV) as pipeline:
        one = module_bytes(pipeline.transformer)
    shared = probe.resident_bytes() - one
    budget_gb = (shared + 2.5 * one) / 1e9  # room for two transformers, not three
    home = ModelHome(_config(tiny_weights_dir, tmp_path, model_memory_gb=budget_gb))
    for repo in (KREA_DEV, FLUX_DEV):
        with home.use(repo):
            pass
    with home.use(KREA_DEV):  # Krea is now the most recently used
        pass
    with home.use(KONTEXT_DEV):
        pass
    assert home.resident() == [KREA_DEV, KONTEXT_DEV]  # FLUX.1-dev was least recently used
    assert home.resident_bytes() <= budget_gb * 1e9
    assert home.load_count(FLUX_DEV) == 1
    with home.use(FLUX_DEV):
        pass
    assert home.load_count(FLUX_DEV) == 2  # reloaded after eviction
    assert KREA_DEV not in home.resident()


def test_a_running_pipeline_is_never_evicted(tiny_weights_dir: Path, tmp_path: Path) -> None:
    probe = ModelHome(_config(tiny_weights_dir, tmp_path))
    with probe.use(KREA_DEV):
        pass
    budget_gb = probe.resident_bytes() * 1.2 / 1e9  # room for one transformer only
    home = ModelHome(_config(tiny_weights_dir, tmp_path, model_memory_gb=budget_gb))
    with home.use(KREA_DEV) as krea:
        with home.use(FLUX_DEV):
            assert KREA_DEV in home.resident()  # Krea is in use: over budget rather than pulled away
        assert krea.transformer is not None


def test_same_pipeline_is_never_run_by_two_threads_at_once(tiny_weights_dir: Path, tmp_path: Path) -> None:
    home = ModelHome(_config(tiny_weights_dir, tmp_path))
    entered = threading.Event()
    release = threading.Event()
    second_entered = threading.Event()

    def first() -> None:
        with home.use(FLUX_DEV):
            entered.set()
            release.wait(10)

    def second() -> None:
        with home.use(FLUX_DEV):
            second_entered.set()

    a = threading.Thread(target=first)
    a.start()
    assert entered.wait(30)
    b = threading.Thread(target=second)
    b.start()
    b.join(0.3)
    assert not second_entered.is_set()  # blocked while the first run holds the pipeline
    with home.use(KREA_DEV):  # another pipeline is free to run meanwhile
        pass
    release.set()
    a.join(10)
    b.join(10)
    assert second_entered.is_set()
