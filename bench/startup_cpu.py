"""CPU seconds a process spends starting up, with Python's cyclic GC running as usual vs paused and
frozen (``fluxserve.startup_gc.collector_paused``, which ``fluxserve serve``'s API process and every
worker process use).

Each sample is a fresh interpreter that does what the process does before it serves: the worker
imports the inference libraries (``worker.process._import_engines``) and fluxserve's worker modules;
the API process builds its runtime and app. The two ways alternate, round after round, so a load
that changes while the bench runs falls on both alike; the figure is each one's median CPU time
(user + system, of that interpreter only). Usage:
    .venv/bin/python bench/startup_cpu.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

PROBE = """
import os, sys
paused = sys.argv[1] == "paused"
from fluxserve.startup_gc import collector_paused
import contextlib
with (collector_paused() if paused else contextlib.nullcontext()):
    if sys.argv[2] == "worker":
        from fluxserve.worker.process import _import_engines
        import fluxserve.worker.runner, fluxserve.tasks.store, fluxserve.engines.registry
        _import_engines()
    else:
        from fluxserve.config import Settings
        from fluxserve.runtime import build_runtime
        import uvicorn
        build_runtime(Settings()).app()
times = os.times()
print(times.user + times.system)
"""


def sample(kind: str, paused: bool, data_dir: str) -> float:
    env = {"FLUXSERVE_DATA_DIR": data_dir, "FLUXSERVE_WORKERS": "0", "TRANSFORMERS_VERBOSITY": "error"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "paused" if paused else "running", kind],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        for kind in ("worker", "api"):
            figures: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):
                for paused in (False, True):
                    figures[paused].append(sample(kind, paused, data_dir))
            running, paused = statistics.median(figures[False]), statistics.median(figures[True])
            saved = running - paused
            print(
                f"{kind:6} start-up CPU s (median of {args.rounds}): GC running {running:.2f}, "
                f"paused+frozen {paused:.2f}, saved {saved:.2f} ({saved / running:.0%})"
            )


if __name__ == "__main__":
    main()
