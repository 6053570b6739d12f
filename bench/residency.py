"""Memory held to serve the three local FLUX.1 tools: one shared model home vs. three separate pipelines.

Usage: ``.venv/bin/python bench/residency.py [--weights DIR] [--device cpu] [--size 128] [--steps 2]``.

Each case runs in its own fresh subprocess, which loads FLUX.1-Krea-dev, FLUX.1-dev (the LoRA tool's
base) and FLUX.1-Kontext-dev and makes one small generation with each, keeping all three resident:

* shared: through the model home (``fluxserve.engines.home``): one copy of the text encoders,
  tokenizers and VAE, one transformer per model;
* separate: ``FluxPipeline.from_pretrained`` / ``FluxKontextPipeline.from_pretrained`` per model,
  each with its own copy of everything.

Without ``--weights`` it builds the tiny weights in a temporary folder; pass a folder of real weights
(the layout of :mod:`fluxserve.engines.weights`) to measure the real models. With tiny weights the
Python/torch baseline dominates RSS, so the table also gives the parameter bytes held (unique tensor
storages of all pipelines' modules, by data pointer), which shows the saving whatever the weights.

Peak RSS is the child's ``VmHWM`` (``/proc/self/status``), not ``ru_maxrss``: on Linux a child's
``ru_maxrss`` starts from the parent's peak (it survives ``exec``), so it would count this script's own
memory. Elsewhere ``ru_maxrss`` is used. On CUDA, RSS counts host memory only.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fluxserve.engines.weights import FLUX1_REPOS, KONTEXT_DEV, SHARED_SUBFOLDERS, WeightsSource

CASES = ("shared", "separate")
RESULT_PREFIX = "RESIDENCY-RESULT "
MIB = 2**20


@dataclass(frozen=True)
class Measure:
    """What one child reports (bytes and seconds)."""

    baseline_rss: int  # peak RSS after imports, before any weights were loaded
    peak_rss: int
    parameter_bytes: int
    seconds: float  # loading and generating


# ------------------------------------------------------------------ child side


def peak_rss() -> int:
    """This process's peak resident set size in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB elsewhere


def parameter_bytes(pipelines: list[Any]) -> int:
    """Bytes of the unique tensor storages behind all modules of ``pipelines`` (shared ones counted once)."""
    import torch

    storages: dict[tuple[str, int], int] = {}
    for pipeline in pipelines:
        for module in pipeline.components.values():
            if not isinstance(module, torch.nn.Module):
                continue
            for tensor in (*module.parameters(), *module.buffers()):
                storage = tensor.untyped_storage()
                storages[(str(storage.device), storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


def generate(pipeline: Any, repo: str, size: int, steps: int) -> None:
    """One small image; Kontext gets a plain reference image at the output size (no auto-resize)."""
    import torch
    from PIL import Image

    kwargs: dict[str, Any] = {}
    if repo == KONTEXT_DEV:
        image = Image.new("RGB", (size, size), (120, 160, 200))
        kwargs = {"image": image, "max_area": size * size, "_auto_resize": False}
    with torch.inference_mode():
        pipeline(
            prompt="a lighthouse at dusk",
            num_inference_steps=steps,
            guidance_scale=3.5,
            width=size,
            height=size,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
            **kwargs,
        )


def serve_shared(root: Path, device: str, scratch: Path, size: int, steps: int) -> list[Any]:
    """The service's way: the registry's one model home, one pipeline per repo."""
    from fluxserve.engines.base import EngineConfig
    from fluxserve.engines.home import get_home
    from fluxserve.engines.registry import EngineRegistry

    config = EngineConfig(data_dir=scratch, weights=str(root), device=device)
    home = get_home(config, EngineRegistry(config))
    pipelines = []
    for repo in FLUX1_REPOS:
        with home.use(repo) as pipeline:
            generate(pipeline, repo, size, steps)
            pipelines.append(pipeline)
    return pipelines


def serve_separate(root: Path, device: str, size: int, steps: int) -> list[Any]:
    """Three independent pipelines, each loaded whole with ``from_pretrained``."""
    import torch
    from diffusers import FluxKontextPipeline, FluxPipeline

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32  # as ModelHome.dtype
    pipelines = []
    for repo in FLUX1_REPOS:
        cls = FluxKontextPipeline if repo == KONTEXT_DEV else FluxPipeline
        missing = borrowed_components(root, repo, dtype)
        pipeline = cls.from_pretrained(str(root / repo), torch_dtype=dtype, **missing).to(device)
        pipeline.set_progress_bar_config(disable=True)
        generate(pipeline, repo, size, steps)
        pipelines.append(pipeline)
    return pipelines


def borrowed_components(root: Path, repo: str, dtype: Any) -> dict[str, Any]:
    """Shared components missing from ``root/repo``, each a private copy from a repo folder that has it."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

    classes = {
        "scheduler": FlowMatchEulerDiscreteScheduler,
        "text_encoder": CLIPTextModel,
        "text_encoder_2": T5EncoderModel,
        "tokenizer": CLIPTokenizer,
        "tokenizer_2": T5TokenizerFast,
        "vae": AutoencoderKL,
    }
    source = WeightsSource("folder", root=root)
    borrowed = {}
    for sub in SHARED_SUBFOLDERS:
        if (root / repo / sub).is_dir():
            continue
        kwargs = {"torch_dtype": dtype} if sub in ("text_encoder", "text_encoder_2", "vae") else {}
        folder = root / source.component_repo(repo, sub)
        borrowed[sub] = classes[sub].from_pretrained(str(folder), subfolder=sub, **kwargs)
    return borrowed


def run_child(args: argparse.Namespace) -> None:
    import diffusers  # noqa: F401 - the baseline includes the libraries both cases import
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from fluxserve.engines.home import resolve_device

    baseline = peak_rss()
    device = resolve_device(args.device)
    started = time.perf_counter()
    if args.child == "shared":
        pipelines = serve_shared(args.weights, device, args.scratch, args.size, args.steps)
    else:
        pipelines = serve_separate(args.weights, device, args.size, args.steps)
    seconds = time.perf_counter() - started
    measure = Measure(baseline, peak_rss(), parameter_bytes(pipelines), seconds)
    print(RESULT_PREFIX + json.dumps(asdict(measure)), flush=True)


# ------------------------------------------------------------------ parent side


def measure_case(case: str, args: argparse.Namespace, root: Path, scratch: Path) -> Measure:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        f"--child={case}",
        f"--weights={root}",
        f"--scratch={scratch}",
        f"--device={args.device}",
        f"--size={args.size}",
        f"--steps={args.steps}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return Measure(**json.loads(line[len(RESULT_PREFIX) :]))
    sys.stderr.write(done.stdout + done.stderr)
    raise SystemExit(f"the {case} case failed (exit code {done.returncode})")


def print_table(results: dict[str, Measure]) -> None:
    shared, separate = results["shared"], results["separate"]
    rows = [
        ("peak RSS (MiB)", shared.peak_rss / MIB, separate.peak_rss / MIB),
        ("  after imports (MiB)", shared.baseline_rss / MIB, separate.baseline_rss / MIB),
        (
            "  above that (MiB)",
            (shared.peak_rss - shared.baseline_rss) / MIB,
            (separate.peak_rss - separate.baseline_rss) / MIB,
        ),
        ("parameters held (MiB)", shared.parameter_bytes / MIB, separate.parameter_bytes / MIB),
        ("load + generate (s)", shared.seconds, separate.seconds),
    ]
    print(f"{'':24}{'shared':>12}{'separate':>12}{'separate/shared':>18}")
    for label, first, second in rows:
        ratio = f"{second / first:.2f}x" if first > 0 else "-"
        print(f"{label:24}{first:12.2f}{second:12.2f}{ratio:>18}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, help="weights folder (default: tiny weights in a temp dir)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.add_argument("--size", type=int, default=128, help="image width and height (multiple of 16)")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps per generation")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def build_tiny_weights_quietly(root: Path) -> Path:
    """The tiny weights, without transformers' save progress bars and torchvision notices."""
    from transformers.utils import logging as transformers_logging

    from fluxserve.engines.tiny import build_tiny_weights

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    return build_tiny_weights(root)


def main() -> None:
    args = parse_args()
    if args.child:
        run_child(args)
        return
    scratch = Path(tempfile.mkdtemp(prefix="residency-bench-"))
    try:
        if args.weights:
            root, label = args.weights.expanduser().resolve(), "folder"
            if not root.is_dir():
                raise SystemExit(f"no weights folder at {root}")
        else:
            root, label = build_tiny_weights_quietly(scratch / "tiny"), "tiny"
        print(
            f"weights: {root} ({label})  device: {args.device}  one {args.size}x{args.size}, "
            f"{args.steps}-step image per model, each case in a fresh process"
        )
        results = {case: measure_case(case, args, root, scratch) for case in CASES}
        print_table(results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
