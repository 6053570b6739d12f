"""Service overhead: the same generations run (a) by calling FluxPipeline directly and (b) through the
HTTP service end to end (signed Run, queue, worker process, PNG storage, waiting for the end over one
kept-alive connection, download). Every prompt is new to the service (no prompt-cache hits).

Both sides use one torch thread and encode each image as PNG, so the figures compare like with like;
each case is measured side by side in one run, in alternating rounds (direct, service, direct, …) so
a load that changes meanwhile falls on both sides alike; each service round pays its own start (the
Run requests) and end (each task followed over Server-Sent Events, ``--wait live``, or Detail polled
every 10 ms, ``--wait poll``) in full. The service runs one task per pipeline call
(FLUXSERVE_MAX_BATCH=1, like the direct side), so the ratio is the per-task overhead, not batching's
gain (``--max-batch 4`` measures the service with batching). Prints images/s for both and their
ratio. Usage:
    .venv/bin/python bench/overhead.py [--count 40] [--cases 64x4,128x20] [--max-batch 1]
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import PRODUCTION, BenchClient
from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def direct(pipe, indexes: range, size: int, steps: int) -> float:
    """Seconds to generate (and PNG-encode) the images ``indexes`` one after the other."""
    import torch

    started = time.perf_counter()
    for index in indexes:
        seed = torch.Generator("cpu").manual_seed(index)
        text = prompt(index, size, steps)
        image = pipe(text, num_inference_steps=steps, width=size, height=size, generator=seed)
        buffer = io.BytesIO()
        image.images[0].save(buffer, format="PNG")
    return time.perf_counter() - started


def through_service(client: BenchClient, indexes: range, size: int, steps: int) -> float:
    """Seconds from queueing the tasks ``indexes`` at once to having downloaded the last image."""
    inputs = {"steps": steps, "width": size, "height": size, "scale": "4.5"}
    started = time.perf_counter()
    ids = [client.run(KREA, prompt=prompt(i, size, steps), seed=str(i), **inputs) for i in indexes]
    for taskid in ids:
        task = client.wait(taskid)
        assert task["status"] == "task_postprocess_end", task["debugerror"]
        assert client.download(task["outputs"][0]["url"])
    return time.perf_counter() - started


def side_by_side(
    pipe, client: BenchClient, count: int, rounds: int, size: int, steps: int
) -> tuple[float, float]:
    """(direct img/s, service img/s): ``rounds`` alternating chunks of each, so that a load that
    changes while the bench runs (a shared machine) falls on both sides alike."""
    direct(pipe, range(count, count + 1), size, steps)  # warm-up (not counted)
    through_service(client, range(count + 1, count + 2), size, steps)
    direct_seconds = service_seconds = 0.0
    bounds = [count * r // rounds for r in range(rounds + 1)]
    for low, high in itertools.pairwise(bounds):
        direct_seconds += direct(pipe, range(low, high), size, steps)
        service_seconds += through_service(client, range(low, high), size, steps)
    return count / direct_seconds, count / service_seconds


def prompt(index: int, size: int, steps: int) -> str:
    """A prompt no earlier generation used: the worker's prompt-encoding cache never helps the service."""
    return f"image {index} at {size}x{steps}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--cases", default="64x4,128x20", help="SIZExSTEPS,… (square images)")
    parser.add_argument("--max-batch", type=int, default=1, help="the service's FLUXSERVE_MAX_BATCH")
    parser.add_argument("--rounds", type=int, default=4, help="alternating chunks per side and case")
    parser.add_argument(
        "--wait", choices=("live", "poll"), default="poll", help="how the bench waits for its tasks"
    )
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
        env = {"FLUXSERVE_LOG_LEVEL": "WARNING", "FLUXSERVE_MAX_BATCH": str(args.max_batch), **PRODUCTION}
        service = Service(Path(tmp) / "data", weights=str(weights), env_overrides=env).start()
        try:
            with BenchClient(service, poll_seconds=0.01, live=args.wait == "live") as client:
                for size, steps in cases:
                    rates = side_by_side(pipe, client, args.count, args.rounds, size, steps)
                    rows.append((size, steps, *rates))
        finally:
            service.stop()
    print(
        f"{args.count} generations per case, tiny FLUX.1, one torch thread, PNG encoded on both sides, "
        f"service FLUXSERVE_MAX_BATCH={args.max_batch}, {args.rounds} alternating rounds, "
        f"the bench waits by {args.wait}"
    )
    print(f"{'case':>12} {'direct img/s':>13} {'service img/s':>14} {'service/direct':>15}")
    for size, steps, direct_rate, service_rate in rows:
        case = f"{size}²/{steps}"
        print(f"{case:>12} {direct_rate:13.2f} {service_rate:14.2f} {service_rate / direct_rate:15.2f}")


if __name__ == "__main__":
    main()
