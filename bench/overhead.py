"""Service overhead: the same N tiny-model generations run (a) by calling FluxPipeline directly and
(b) through the HTTP service end to end (signed Run, worker, PNG storage, Detail polling, download).
Both run single-threaded (torch threads = 1) so that the figures compare like with like.

Prints images/s for both and their ratio, measured in one run. Usage:
    .venv/bin/python bench/overhead.py [--count 50] [--size 64] [--steps 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def direct(weights: Path, count: int, size: int, steps: int) -> float:
    import torch
    from diffusers import FluxPipeline

    torch.set_num_threads(1)  # the service's test harness runs its worker with OMP_NUM_THREADS=1 too
    pipe = FluxPipeline.from_pretrained(str(weights / KREA), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe("warm-up", num_inference_steps=steps, width=size, height=size)
    started = time.perf_counter()
    for index in range(count):
        generator = torch.Generator("cpu").manual_seed(index)
        pipe(f"image {index}", num_inference_steps=steps, width=size, height=size, generator=generator)
    return count / (time.perf_counter() - started)


def through_service(weights: Path, data_dir: Path, count: int, size: int, steps: int) -> float:
    service = Service(
        data_dir, weights=str(weights), env_overrides={"FLUXSERVE_LOG_LEVEL": "WARNING"}
    ).start()
    try:
        inputs = {"steps": steps, "width": size, "height": size, "scale": "4.5"}
        service.wait(service.run(KREA, prompt="warm-up", **inputs)["taskid"])
        started = time.perf_counter()
        ids = [
            service.run(KREA, prompt=f"image {index}", seed=str(index), **inputs)["taskid"]
            for index in range(count)
        ]
        for taskid in ids:
            task = service.wait(taskid, timeout=600)
            assert task["status"] == "task_postprocess_end", task["debugerror"]
            assert httpx.get(task["outputs"][0]["url"]).status_code == 200
        return count / (time.perf_counter() - started)
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    from fluxserve.engines.tiny import build_tiny_weights

    with tempfile.TemporaryDirectory() as tmp:
        weights = build_tiny_weights(Path(tmp) / "weights")
        direct_rate = direct(weights, args.count, args.size, args.steps)
        service_rate = through_service(weights, Path(tmp) / "data", args.count, args.size, args.steps)
    print(f"{args.count} generations, tiny FLUX.1, {args.size}x{args.size}, {args.steps} steps")
    print(f"direct FluxPipeline calls : {direct_rate:7.2f} images/s")
    print(f"through the HTTP service  : {service_rate:7.2f} images/s")
    print(f"service / direct          : {service_rate / direct_rate:7.2f}")


if __name__ == "__main__":
    main()
