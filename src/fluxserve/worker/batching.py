"""Claiming a batch: the oldest queued task and its compatible company, waiting briefly for more.

Tasks are compatible when they have the same non-empty batch key (:mod:`fluxserve.catalog.batching`).
After the first claim (which already takes every compatible queued task, up to ``max_batch``), the
worker waits up to ``wait_seconds`` for more — but only while nothing else it could run is queued:
holding an incompatible task back to fill a batch would cost more than the batch saves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.store import TaskStore

POLL_SECONDS = 0.005
"""How often the queue is read while waiting for company (one indexed query)."""


def claim_batch(
    store: TaskStore,
    worker_id: str,
    lease_seconds: float,
    tools: Sequence[str] | None,
    max_batch: int,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[TaskRecord]:
    """Up to ``max_batch`` tasks claimed for ``worker_id``, all with one batch key; [] if none queued."""
    batch = store.claim_batch(worker_id, lease_seconds, tools, limit=max(1, max_batch))
    if not batch or not batch[0].batch_key or len(batch) >= max_batch or wait_seconds <= 0:
        return batch
    key = batch[0].batch_key
    deadline = time.monotonic() + wait_seconds
    while len(batch) < max_batch and time.monotonic() < deadline:
        if store.has_queued(tools):
            break  # what is queued now cannot join this batch (it would have been claimed): go
        sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        batch += store.claim_compatible(worker_id, lease_seconds, key, tools, limit=max_batch - len(batch))
    return batch
