"""Event channel latency: a worker-side link sends N task events to the API-side hub over the Unix
socket (the embedded default) and, with ``--postgres URL``, over LISTEN/NOTIFY; prints the median
and 99th percentile from send to delivery. Usage:
    .venv/bin/python bench/channel_latency.py [--count 2000] [--postgres postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fluxserve.channel import open_api_endpoint, open_worker_endpoint
from fluxserve.tasks.events import TaskEvent


def measure(database_url: str, data_dir: Path, count: int) -> list[float]:
    arrived: queue.Queue = queue.Queue()
    hub = open_api_endpoint(database_url, data_dir, lambda event: arrived.put((time.perf_counter(), event)))
    hub.start()
    link = open_worker_endpoint(database_url, data_dir, lambda control: None)
    link.start()
    time.sleep(0.5)  # connected / listening
    delays = []
    try:
        for index in range(count):
            sent = time.perf_counter()
            message = {"type": "progressGenerate", "stepCurrent": str(index)}
            link.send_event(TaskEvent(str(index), "token", "task_output", message, droppable=True))
            at, _event = arrived.get(timeout=10)
            delays.append((at - sent) * 1000)
    finally:
        link.stop()
        hub.stop()
    return delays


def report(name: str, delays: list[float]) -> None:
    ordered = sorted(delays)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    median = statistics.median(ordered)
    print(f"{name:28s} median {median:7.3f} ms   p99 {p99:7.3f} ms   ({len(ordered)} events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL to measure LISTEN/NOTIFY too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report("Unix socket (SQLite default)", measure("sqlite:///unused", Path(tmp), args.count))
        if args.postgres:
            report("PostgreSQL LISTEN/NOTIFY", measure(args.postgres, Path(tmp), args.count))


if __name__ == "__main__":
    main()
