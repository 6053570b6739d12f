"""Task throughput under load: (1) with 50 clients polling Task/Detail as fast as they can (wrk) vs
none, (2) two worker processes vs one. Each pair is measured side by side in one run, on the tiny
weights with one torch thread per worker. Usage:
    .venv/bin/python bench/load.py [--count 30] [--size 128] [--steps 20] [--pollers 50]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import BenchClient
from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def throughput(service: Service, count: int, size: int, steps: int) -> float:
    """Tasks per second for ``count`` tasks submitted at once, until the last one ended."""
    inputs = {"steps": steps, "width": size, "height": size}
    with BenchClient(service) as client:
        started = time.perf_counter()
        ids = [client.run(KREA, prompt=f"image {i}", seed=str(i), **inputs) for i in range(count)]
        for taskid in ids:
            assert client.wait(taskid)["status"] == "task_postprocess_end"
        return count / (time.perf_counter() - started)


def warm(service: Service, workers: int, size: int, steps: int) -> None:
    """Every worker has loaded the model (a round of tasks per worker)."""
    throughput(service, 2 * workers, size, steps)


def start_pollers(service: Service, taskid: str, clients: int, tmp: Path) -> subprocess.Popen:
    script = tmp / "poll.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps({'taskid': taskid}))}"]
    headers = {"content-type": "application/json", **service.headers()}
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    url = f"{service.base_url}/v1/Task/Detail"
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{clients}", "-d3600s", "-s", str(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pollers", type=int, default=50)
    args = parser.parse_args()
    from fluxserve.engines.tiny import build_tiny_weights

    quiet = {"FLUXSERVE_LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        weights = str(build_tiny_weights(tmp / "weights"))
        one = Service(tmp / "one", weights=weights, env_overrides=quiet).start()
        try:
            warm(one, 1, args.size, args.steps)
            alone = throughput(one, args.count, args.size, args.steps)
            target = one.run(KREA, prompt="polled", steps=2, width=64, height=64)["taskid"]
            one.wait(target)
            pollers = start_pollers(one, target, args.pollers, tmp)
            try:
                time.sleep(1.0)
                polled = throughput(one, args.count, args.size, args.steps)
            finally:
                pollers.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
                report = pollers.communicate()[0]
            serial = throughput(one, args.count, args.size, args.steps)  # one worker, for the scaling pair
        finally:
            one.stop()
        two = Service(tmp / "two", weights=weights, env_overrides={**quiet, "FLUXSERVE_WORKERS": "2"}).start()
        try:
            warm(two, 2, args.size, args.steps)
            parallel = throughput(two, args.count, args.size, args.steps)
        finally:
            two.stop()
    case = f"tiny FLUX.1 {args.size}²/{args.steps} steps"
    print(f"{args.count} tasks per figure, {case}, one torch thread per worker")
    print(f"1 worker, nobody polling            : {alone:6.2f} tasks/s")
    ratio = polled / alone
    print(f"1 worker, {args.pollers} clients polling Detail : {polled:6.2f} tasks/s   ratio {ratio:.2f}")
    print(f"1 worker process                    : {serial:6.2f} tasks/s")
    print(f"2 worker processes                  : {parallel:6.2f} tasks/s   ratio {parallel / serial:.2f}")
    requests = [line for line in report.splitlines() if "requests in" in line]
    print("pollers (wrk):", requests[0].strip() if requests else "no summary (stopped early)")


if __name__ == "__main__":
    main()
