"""Switching between two catalog LoRAs (set_adapters on a resident pipeline) vs. rebuilding the pipeline.

Usage: ``python bench/lora_switch.py [--weights DIR] [--repeat N]``. Without ``--weights`` it builds the
tiny weights in a temporary folder; pass a folder of real weights (the layout of
fluxserve.engines.weights) to measure FLUX.1-dev for real. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from fluxserve.catalog.lora import load_lora_catalog
from fluxserve.engines.base import EngineConfig
from fluxserve.engines.flux_lora import AdapterSet, AdapterSpec
from fluxserve.engines.flux_run import TextToImage, run_text_to_image
from fluxserve.engines.home import ModelHome
from fluxserve.engines.tiny import build_tiny_weights
from fluxserve.engines.weights import FLUX_DEV


def _timed(action, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def _ms(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:9.2f} ms  (min {min(times) * 1000:.2f}, n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, help="weights folder (default: tiny weights in a temp dir)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    root = args.weights or build_tiny_weights(scratch / "tiny")
    config = EngineConfig(data_dir=scratch / "data", weights=str(root))
    home = ModelHome(config)
    first, second = load_lora_catalog()[:2]
    specs = [
        AdapterSpec(f"catalog-{entry.id}", root / entry.repo / entry.weight_name, 1.0, entry.id)
        for entry in (first, second)
    ]
    adapters = AdapterSet(max_loaded=8)
    request = TextToImage("a lion", steps=4, scale=3.5, samples=1, seed=1, width=128, height=128)
    with home.use(FLUX_DEV) as pipe:
        print(f"weights: {root}  device: {home.device}")
        first_load = _timed(lambda: adapters.activate(pipe, specs[:1]), 1)
        print(f"first load of one LoRA adapter:     {_ms(first_load)}")
        adapters.activate(pipe, specs[1:])
        flip = iter(range(10**9))
        switch = _timed(lambda: adapters.activate(pipe, [specs[next(flip) % 2]]), args.repeat)
        print(f"switch between two loaded LoRAs:    {_ms(switch)}")
        to_base = _timed(lambda: adapters.activate(pipe, []), args.repeat)
        print(f"switch to base (adapters disabled): {_ms(to_base)}")
        base = _timed(lambda: run_text_to_image(pipe, home.device, request, lambda s, t: None), 5)
        print(f"generate 128x128, 4 steps, no LoRA: {_ms(base)}")
        adapters.activate(pipe, specs[:1])
        generate = _timed(lambda: run_text_to_image(pipe, home.device, request, lambda s, t: None), 5)
        print(f"generate 128x128, 4 steps, 1 LoRA:  {_ms(generate)}")
    print(f"rebuild pipeline + load LoRA:       {_ms(_timed(lambda: _rebuild(root, specs[1]), 3))}")
    shutil.rmtree(scratch, ignore_errors=True)


def _rebuild(root: Path, spec: AdapterSpec) -> None:
    """What a worker without adapter switching would do: load FLUX.1-dev again with the other LoRA."""
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(root / FLUX_DEV)
    pipe.load_lora_weights(str(spec.path.parent), weight_name=spec.path.name, adapter_name=spec.name)


if __name__ == "__main__":
    main()
