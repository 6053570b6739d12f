"""Cost of a latent preview against the cost of a denoising step (target: at most 5 %).

Usage: ``python bench/preview_cost.py [--weights DIR] [--sizes 512,1024] [--steps N]``. Without
``--weights`` it builds the tiny FLUX.1 weights in a temporary folder. For each size it runs the
Krea pipeline twice with the worker's own step callback (:class:`StepProgress`): once without
previews and once with a preview on every step, and times the preview path alone (projection,
JPEG, base64 message) inside the second run. It also times the preview path on tokens of the real
FLUX.1 width (64 values) at each size, which does not depend on the model. One line per figure.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fluxserve.engines.latent_preview import Projection, project, token_grid
from fluxserve.engines.tiny import build_tiny_weights
from fluxserve.worker.progress import PreviewPolicy, StepProgress


class _TimedProgress(StepProgress):
    """StepProgress that records the wall time between steps and the time spent in previews."""

    def __init__(self, policy: PreviewPolicy | None) -> None:
        super().__init__(lambda: False, lambda message: None, preview=policy)
        self.step_times: list[float] = []
        self.preview_times: list[float] = []
        self._last = time.perf_counter()

    def __call__(self, step: int, total: int) -> None:
        now = time.perf_counter()
        self.step_times.append(now - self._last)
        super().__call__(step, total)
        self._last = time.perf_counter()

    def take_preview(self, step, total, source) -> None:
        started = time.perf_counter()
        super().take_preview(step, total, source)
        spent = time.perf_counter() - started
        if spent > 0:
            self.preview_times.append(spent)
        self._last += spent  # the step time excludes the preview


def _run(pipe, size: int, steps: int, policy: PreviewPolicy | None) -> _TimedProgress:
    import torch

    from fluxserve.engines.flux_run import _step_callback

    progress = _TimedProgress(policy)
    with torch.inference_mode():
        pipe(
            prompt="a lighthouse at dusk",
            width=size,
            height=size,
            num_inference_steps=steps,
            guidance_scale=3.5,
            generator=torch.Generator("cpu").manual_seed(1),
            callback_on_step_end=_step_callback(progress, 0, steps, (size, size)),
        )
    return progress


def _real_width_preview_ms(size: int, repeat: int = 20) -> float:
    """The preview path on FLUX.1-shaped tokens (64 values each): projection, JPEG and base64."""
    from fluxserve.engines.latent_preview import encode_preview
    from fluxserve.worker.progress import Preview

    rng = np.random.default_rng(0)
    projection = Projection(rng.normal(0, 0.05, (64, 12)).astype(np.float32), np.zeros(12, np.float32))
    rows, cols = token_grid(size, size)
    tokens = rng.normal(size=(rows * cols, 64)).astype(np.float32)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        rgb = project(tokens, rows, cols, projection)
        Preview(1, 2, encode_preview(rgb, (size, size))).message()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, help="folder of weights (default: tiny, built now)")
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    import torch
    from diffusers import FluxPipeline

    torch.set_num_threads(1)
    scratch = None
    root = args.weights
    if root is None:
        scratch = Path(tempfile.mkdtemp(prefix="fluxserve-bench-"))
        root = build_tiny_weights(scratch)
    try:
        pipe = FluxPipeline.from_pretrained(str(root / "black-forest-labs/FLUX.1-Krea-dev"))
        pipe.set_progress_bar_config(disable=True)
        _run(pipe, 64, 2, PreviewPolicy(1, lambda preview: None))  # warm-up, fits the projection
        for size in (int(part) for part in args.sizes.split(",")):
            plain = _run(pipe, size, args.steps, None)
            previewed = _run(pipe, size, args.steps, PreviewPolicy(1, lambda preview: None))
            step = statistics.median(plain.step_times[1:])
            preview = statistics.median(previewed.preview_times)
            print(f"{size}x{size}: step (tiny weights, no preview)   median {step * 1000:9.2f} ms")
            print(f"{size}x{size}: preview (tiny weights' tokens)    median {preview * 1000:9.2f} ms")
            print(f"{size}x{size}: preview / step, every step       {preview / step * 100:9.2f} %")
            print(f"{size}x{size}: preview / step, every 5th step   {preview / step * 20:9.2f} %")
            real_width = _real_width_preview_ms(size)
            print(f"{size}x{size}: preview (FLUX.1-width tokens)    median {real_width:9.2f} ms")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
