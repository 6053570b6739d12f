"""How long one /metrics scrape takes as the task table grows (the metrics are computed from the store).

    PYTHONPATH=src python bench/metrics_scrape.py [TASKS ...]

Builds a SQLite store in a temp folder with TASKS ended tasks over five tools (bulk insert), then
times ``generate_latest`` of the app's registry (the exact work of GET /metrics) five times.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import generate_latest

from fluxserve.api.metrics import build_registry
from fluxserve.tasks import schema
from fluxserve.tasks.store import TaskStore

TOOLS = [f"owner/tool-{n}" for n in range(5)]


def fill(store: TaskStore, count: int) -> None:
    project = store.projects.create("bench").id
    rng = random.Random(1)
    rows = []
    for _ in range(count):
        created = 1e9 + rng.random() * 1e6
        accepted = created + rng.expovariate(1 / 5)
        status, pexit = rng.choice(
            [("task_postprocess_end", "0"), ("task_postprocess_end", "1"), ("task_cancel", "0")]
        )
        rows.append(
            {
                "uuid": str(uuid.uuid4()),
                "token": uuid.uuid4().hex,
                "project_id": project,
                "tool": rng.choice(TOOLS),
                "inputs": {},
                "parameters": {},
                "files": {},
                "status": status,
                "pexit": pexit,
                "createtime": created,
                "accepttime": accepted,
                "postprocessendtime": accepted + rng.expovariate(1 / 20),
                "callback_state": rng.choice(["none", "delivered", "failed"]),
            }
        )
    with store.engine.begin() as conn:
        conn.execute(sa.insert(schema.tasks), rows)


def main(sizes: list[int]) -> None:
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            store = TaskStore.open(f"sqlite:///{Path(folder) / 'bench.db'}")
            fill(store, size)
            registry = build_registry(store, lambda: TOOLS)
            timings = []
            for _ in range(5):
                start = time.perf_counter()
                text = generate_latest(registry)
                timings.append(time.perf_counter() - start)
            print(
                f"{size:>8} tasks: scrape median {sorted(timings)[2] * 1000:7.1f} ms, "
                f"min {min(timings) * 1000:7.1f} ms, {len(text)} bytes"
            )


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1_000, 10_000, 100_000])
