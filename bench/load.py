"""Task throughput under load: (1) with 50 clients polling Task/Detail as fast as they can (wrk) vs
none, (2) two worker processes vs one. Each pair is measured side by side in one run, on the tiny
weights with one torch thread per worker.

Both services (one worker process, two worker processes) run for the whole bench, and the three
figures are taken in alternating rounds (one worker alone, one worker polled, two workers, again…)
so a load that changes while the bench runs falls on every figure alike. Each round queues its
tasks at once and waits for the last (Detail polled every 10 ms over one kept-alive connection).
Both services run one task per pipeline call (``--max-batch 1``), so the scaling pair compares
processes, not how batches happened to split between them. Usage:
    .venv/bin/python bench/load.py [--count 32] [--rounds 4] [--size 128] [--steps 20] [--pollers 50]
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

from bench.client import PRODUCTION, BenchClient
from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def batch_seconds(service: Service, count: int, size: int, steps: int, phase: str) -> float:
    """Seconds from queueing ``count`` tasks at once until the last one ended.

    Prompts name the phase and round: none is reused, so the worker's prompt-encoding cache never
    favours one figure over another.
    """
    inputs = {"steps": steps, "width": size, "height": size}
    with BenchClient(service, poll_seconds=0.01) as client:
        started = time.perf_counter()
        ids = [client.run(KREA, prompt=f"{phase} {i}", seed=str(i), **inputs) for i in range(count)]
        for taskid in ids:
            assert client.wait(taskid)["status"] == "task_postprocess_end"
        return time.perf_counter() - started


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


def polled_seconds(service: Service, args: argparse.Namespace, target: str, tmp: Path, phase: str):
    """(seconds, wrk's summary line) of one round with the pollers hammering Detail throughout."""
    pollers = start_pollers(service, target, args.pollers, tmp)
    try:
        time.sleep(0.5)  # the pollers are connected and polling before the first task is queued
        seconds = batch_seconds(service, args.count // args.rounds, args.size, args.steps, phase)
    finally:
        pollers.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        report = pollers.communicate()[0]
    lines = [line.strip() for line in report.splitlines() if "requests in" in line]
    return seconds, lines[0] if lines else "no summary"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=32, help="tasks per figure")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the count is split into")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--max-batch", type=int, default=1, help="FLUXSERVE_MAX_BATCH of both services")
    args = parser.parse_args()
    from fluxserve.engines.tiny import build_tiny_weights

    env = {"FLUXSERVE_LOG_LEVEL": "WARNING", "FLUXSERVE_MAX_BATCH": str(args.max_batch), **PRODUCTION}
    chunk = args.count // args.rounds
    seconds = {"alone": 0.0, "polled": 0.0, "two": 0.0}
    reports = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        weights = str(build_tiny_weights(tmp / "weights"))
        one = Service(tmp / "one", weights=weights, env_overrides=env).start()
        two = Service(tmp / "two", weights=weights, env_overrides={**env, "FLUXSERVE_WORKERS": "2"}).start()
        try:
            batch_seconds(one, 2, args.size, args.steps, "warm-up")  # every worker has loaded the model
            batch_seconds(two, 4, args.size, args.steps, "warm-up")
            target = one.run(KREA, prompt="polled", steps=2, width=64, height=64)["taskid"]
            one.wait(target)
            for round_ in range(args.rounds):
                seconds["alone"] += batch_seconds(one, chunk, args.size, args.steps, f"alone {round_}")
                polled, report = polled_seconds(one, args, target, tmp, f"polled {round_}")
                seconds["polled"] += polled
                reports.append(report)
                seconds["two"] += batch_seconds(two, chunk, args.size, args.steps, f"two {round_}")
        finally:
            one.stop()
            two.stop()
    rate = {phase: chunk * args.rounds / spent for phase, spent in seconds.items()}
    case = f"tiny FLUX.1 {args.size}²/{args.steps} steps, FLUXSERVE_MAX_BATCH={args.max_batch}"
    print(
        f"{chunk * args.rounds} tasks per figure in {args.rounds} alternating rounds, {case}, "
        "one torch thread per worker"
    )
    print(f"1 worker process, nobody polling    : {rate['alone']:6.2f} tasks/s")
    ratio = rate["polled"] / rate["alone"]
    print(
        f"1 worker, {args.pollers} clients polling Detail : {rate['polled']:6.2f} tasks/s   ratio {ratio:.2f}"
    )
    print(
        f"2 worker processes                  : {rate['two']:6.2f} tasks/s   "
        f"ratio {rate['two'] / rate['alone']:.2f}"
    )
    for round_, report in enumerate(reports):
        print(f"pollers (wrk), round {round_ + 1}: {report}")


if __name__ == "__main__":
    main()
