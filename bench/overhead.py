"""Service overhead: the same generations run (a) by calling FluxPipeline directly and (b) through the
HTTP service end to end (signed Run, queue, worker process, PNG storage, Detail polling, download).

Both sides use one torch thread and encode each image as PNG, so the figures compare like with like;
each case is measured side by side in one run. The service runs one task per pipeline call
(FLUXSERVE_MAX_BATCH=1, like the direct side), so the ratio is the per-task overhead, not batching's
gain (``--max-batch 4`` measures the service with batching). Prints images/s for both and their
ratio. Usage:
    .venv/bin/python bench/overhead.py [--count 40] [--cases 64x4,128x20] [--max-batch 1]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def direct(pipe, count: int, size: int, steps: int) -> float:
    import torch

    def one(index: int) -> bytes:
        seed = torch.Generator("cpu").manual_seed(index)
        image = pipe(f"image {index}", num_inference_steps=steps, width=size, height=size, generator=seed)
        buffer = io.BytesIO()
        image.images[0].save(buffer, format="PNG")
        return buffer.getvalue()

    one(0)  # warm-up
    started = time.perf_counter()
    for index in range(count):
        one(index)
    return count / (time.perf_counter() - started)


def through_service(service: Service, count: int, size: int, steps: int) -> float:
    inputs = {"steps": steps, "width": size, "height": size, "scale": "4.5"}
    service.wait(service.run(KREA, prompt="warm-up", **inputs)["taskid"])
    started = time.perf_counter()
    ids = [service.run(KREA, prompt=f"image {i}", seed=str(i), **inputs)["taskid"] for i in range(count)]
    for taskid in ids:
        task = service.wait(taskid, timeout=600)
        assert task["status"] == "task_postprocess_end", task["debugerror"]
        assert httpx.get(task["outputs"][0]["url"]).status_code == 200
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--cases", default="64x4,128x20", help="SIZExSTEPS,… (square images)")
    parser.add_argument("--max-batch", type=int, default=1, help="the service's FLUXSERVE_MAX_BATCH")
    args = parser.parse_args()
    cases = [tuple(int(part) for part in case.split("x")) for case in args.cases.split(",")]
    import torch
    from diffusers import FluxPipeline

    from fluxserve.engines.tiny import build_tiny_weights

    torch.set_num_threads(1)  # the service's worker runs with OMP_NUM_THREADS=1 (tests' Service env)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = build_tiny_weights(Path(tmp) / "weights")
        pipe = FluxPipeline.from_pretrained(str(weights / KREA), dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        env = {"FLUXSERVE_LOG_LEVEL": "WARNING", "FLUXSERVE_MAX_BATCH": str(args.max_batch)}
        service = Service(Path(tmp) / "data", weights=str(weights), env_overrides=env).start()
        try:
            for size, steps in cases:
                direct_rate = direct(pipe, args.count, size, steps)
                service_rate = through_service(service, args.count, size, steps)
                rows.append((size, steps, direct_rate, service_rate))
        finally:
            service.stop()
    print(
        f"{args.count} generations per case, tiny FLUX.1, one torch thread, PNG encoded on both sides, "
        f"service FLUXSERVE_MAX_BATCH={args.max_batch}"
    )
    print(f"{'case':>12} {'direct img/s':>13} {'service img/s':>14} {'service/direct':>15}")
    for size, steps, direct_rate, service_rate in rows:
        case = f"{size}²/{steps}"
        print(f"{case:>12} {direct_rate:13.2f} {service_rate:14.2f} {service_rate / direct_rate:15.2f}")


if __name__ == "__main__":
    main()
