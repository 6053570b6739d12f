"""Task/Detail throughput: fluxserve's signed Detail vs a bare Starlette route answering the same JSON.

Both run on the same stack (uvicorn with the same HTTP parser and event loop, one process, same
log level, no access log, the same niceness as serve's HTTP thread, FLUXSERVE_API_NICE's default)
on 127.0.0.1 and are loaded with `wrk` (32 connections) in alternating slices (bare, fluxserve, bare,
…), so a load that changes while the bench runs falls on both alike. The fluxserve answer is for
a finished task with one output (auth, body parsing, the task and its outputs, the wire JSON), and
is checked to be that task's answer before the load starts.
Usage:
    .venv/bin/python bench/detail.py [--seconds 10] [--connections 32] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import PRODUCTION
from tests.support.service import Service, free_port

KREA = "black-forest-labs/FLUX.1-Krea-dev"

BARE_APP = """
import os, sys
os.nice(int(os.environ["BENCH_NICE"]))
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
import json
payload = json.loads(open(os.environ["BENCH_PAYLOAD"]).read())
async def detail(request):
    await request.body()
    return JSONResponse(payload)
app = Starlette(routes=[Route("/v1/Task/Detail", detail, methods=["POST"])])
port = int(os.environ["BENCH_PORT"])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def wrk(url: str, headers: dict[str, str], body: str, seconds: int, connections: int, tmp: Path) -> float:
    script = tmp / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if re.search(r"Non-2xx", out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def wait_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.post(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="alternating slices the seconds are split into")
    args = parser.parse_args()
    from fluxserve.config import Settings
    from fluxserve.engines.tiny import build_tiny_weights

    nice = os.environ.get("FLUXSERVE_API_NICE", str(Settings.model_fields["api_nice"].default))

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        weights = build_tiny_weights(tmp / "weights")
        env = {"FLUXSERVE_LOG_LEVEL": "WARNING", **PRODUCTION}
        service = Service(tmp / "data", weights=str(weights), env_overrides=env).start()
        try:
            taskid = service.run(KREA, prompt="bench", steps=2, width=64, height=64)["taskid"]
            task = service.wait(taskid)
            body = json.dumps({"taskid": taskid})
            answer = service.post("/v1/Task/Detail", json={"taskid": taskid}).json()
            assert answer["result"] is True and answer["tasklist"][0]["id"] == taskid, answer
            payload = tmp / "payload.json"
            payload.write_text(json.dumps(answer))
            port = free_port()
            bare = subprocess.Popen(
                [sys.executable, "-c", BARE_APP],
                env={
                    **os.environ,
                    "BENCH_PAYLOAD": str(payload),
                    "BENCH_PORT": str(port),
                    "BENCH_NICE": nice,
                },
            )
            try:
                bare_url = f"http://127.0.0.1:{port}/v1/Task/Detail"
                wait_up(bare_url)
                headers = {"content-type": "application/json", **service.headers()}
                service_url = f"{service.base_url}/v1/Task/Detail"
                slice_ = max(1, args.seconds // args.rounds)
                bare_rates, service_rates = [], []
                for _ in range(args.rounds):  # alternating slices: a changing load falls on both alike
                    bare_rates.append(wrk(bare_url, headers, body, slice_, args.connections, tmp))
                    service_rates.append(wrk(service_url, headers, body, slice_, args.connections, tmp))
                bare_rate = sum(bare_rates) / len(bare_rates)
                service_rate = sum(service_rates) / len(service_rates)
            finally:
                bare.terminate()
                bare.wait()
        finally:
            service.stop()
    assert task["status"] == "task_postprocess_end"
    print(
        f"Task/Detail, {args.connections} connections, {args.seconds}s each in {args.rounds} alternating "
        "slices (wrk, 127.0.0.1)"
    )
    print(f"bare Starlette route, same JSON : {bare_rate:9.0f} req/s")
    print(f"fluxserve Task/Detail (signed)  : {service_rate:9.0f} req/s")
    print(f"fluxserve / bare                : {service_rate / bare_rate:9.2f}")


if __name__ == "__main__":
    main()
