"""FluxPipeline called directly in N processes at once: how far this machine itself scales.

The service's "2 worker processes ÷ 1" figure cannot exceed what two plain processes generating side by
side get on the same cores (memory bandwidth and shared caches are shared by any two processes), so
``bench/load.py`` measures that ceiling in the same run. Each process loads the tiny FLUX.1 pipeline
once, with one torch thread (like a supervised worker), and PNG-encodes every image (like the service).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def _serve(weights: str, nice: int, conn: Connection) -> None:
    """A child: load the pipeline, then run ("run", prompts, size, steps) commands until None.

    In a session of its own, as a fluxserve worker is (under its ``serve``, started in a new session):
    with the kernel's autogroup scheduling on, a process shares CPU first by session, so a child left
    in the bench's session would compete with the bench's own load generator (wrk) as a worker does not.
    ``nice`` is applied as FLUXSERVE_WORKER_NICE is to a worker.
    """
    os.setsid()
    from fluxserve.worker.priority import apply

    apply(nice)
    import torch
    from diffusers import FluxPipeline

    torch.set_num_threads(1)
    pipe = FluxPipeline.from_pretrained(str(Path(weights) / KREA), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    conn.send("ready")
    while (command := conn.recv()) is not None:
        prompts, size, steps = command
        for index, text in enumerate(prompts):
            image = pipe(
                text,
                num_inference_steps=steps,
                width=size,
                height=size,
                generator=torch.Generator("cpu").manual_seed(index),
            )
            image.images[0].save(io.BytesIO(), format="PNG")
        conn.send("done")


class DirectProcesses:
    """``count`` pipeline processes (spawned, as fluxserve's workers are), kept for several rounds."""

    def __init__(self, weights: Path, count: int, nice: int = 0) -> None:
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs = []
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(str(weights), nice, theirs), daemon=True)
            process.start()
            self._conns.append(mine)
            self._procs.append(process)
        for conn in self._conns:
            assert conn.recv() == "ready"

    def seconds(self, prompts: list[str], size: int, steps: int) -> float:
        """Wall seconds for the processes to generate ``prompts`` between them (split evenly)."""
        shares = [prompts[index :: len(self._conns)] for index in range(len(self._conns))]
        started = time.perf_counter()
        for conn, share in zip(self._conns, shares, strict=True):
            conn.send((share, size, steps))
        for conn in self._conns:
            assert conn.recv() == "done"
        return time.perf_counter() - started

    def close(self) -> None:
        for conn in self._conns:
            conn.send(None)
        for process in self._procs:
            process.join(10)
