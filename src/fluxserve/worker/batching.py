"""Batches of tasks in a worker: claiming one, and the bookkeeping of its members.

Claiming: the oldest queued task and its compatible company, waiting briefly for more.

Tasks are compatible when they have the same non-empty batch key (:mod:`fluxserve.catalog.batching`).
After the first claim (which already takes every compatible queued task, up to ``max_batch``), the
worker waits for more — but only while nothing else it could run is queued (holding an incompatible
task back to fill a batch would cost more than the batch saves), and only within ``wait_seconds``
of the newest claimed task's queueing: the wait is for tasks sent together with it, and a task that
already sat in a backlog that long is not held back further (so draining a queue of tasks that
cannot batch costs no waiting at all).

Running (:class:`fluxserve.worker.runner.Worker`): each claimed task becomes a :class:`Member`;
after preprocessing, members whose engine gives equal batch signatures share one
``generate_batch`` call (:func:`batch_groups`); a member's step callback is wrapped in
:class:`EndOnKill`, so a killed member ends at once while the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxserve.engines.base import Engine, EngineJob
from fluxserve.errors import TaskKilled
from fluxserve.tasks.records import TaskRecord
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore
from fluxserve.worker.kill import KillCheck
from fluxserve.worker.progress import StepProgress

log = logging.getLogger(__name__)

POLL_SECONDS = 0.005
"""How often the queue is read while waiting for company (one indexed query)."""

LEASE_SHARE_FOR_WAITING = 0.25
"""The longest wait for company, as a share of the lease: the tasks already claimed are not yet
under the worker's lease thread while it waits, so a wait near the lease would let the sweeper
take them back."""


def claim_batch(
    store: TaskStore,
    worker_id: str,
    lease_seconds: float,
    tools: Sequence[str] | None,
    max_batch: int,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    through: TaskStatus = TaskStatus.ACCEPT,
    wall: Callable[[], float] = time.time,
) -> list[TaskRecord]:
    """Up to ``max_batch`` tasks claimed for ``worker_id``, all with one batch key; [] if none queued.
    The tasks are moved on to ``through`` as they are claimed (:meth:`TaskStore.claim_batch`)."""
    batch = store.claim_batch(worker_id, lease_seconds, tools, limit=max(1, max_batch), through=through)
    if not batch or not batch[0].batch_key or len(batch) >= max_batch or wait_seconds <= 0:
        return batch
    key = batch[0].batch_key
    window = wait_seconds - _queued_for(batch, wall)
    if window <= 0:
        return batch  # these tasks waited in the queue longer than the window: nothing more to catch
    deadline = clock() + min(window, lease_seconds * LEASE_SHARE_FOR_WAITING)
    while len(batch) < max_batch and clock() < deadline:
        if store.has_queued(tools):
            break  # what is queued now cannot join this batch (it would have been claimed): go
        sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))
        batch += store.claim_compatible(
            worker_id, lease_seconds, key, tools, limit=max_batch - len(batch), through=through
        )
    return batch


def _queued_for(batch: list[TaskRecord], wall: Callable[[], float]) -> float:
    """How long the newest task of ``batch`` has been queued (0 for a clock behind the API's)."""
    newest = max(task.times.get("createtime") or 0.0 for task in batch)
    return max(0.0, wall() - newest)


@dataclass
class Member:
    """One claimed task on its way through this worker (alone or in a batch)."""

    task: TaskRecord
    workdir: Path
    is_killed: KillCheck
    progress: StepProgress
    project: str = ""
    engine: Engine | None = None
    job: EngineJob | None = None
    prepared: Any = None
    ended: bool = False  # reached a terminal status (or was lost): nothing more to do


def running(members: list[Member]) -> list[Member]:
    return [member for member in members if not member.ended]


def batch_groups(members: list[Member], max_rows: int) -> list[list[Member]]:
    """The members still running, grouped by (engine, batch signature), each group at most
    ``max_rows`` images (a task brings ``samples`` rows; one with more runs alone); unbatchable
    members alone. Groups come in the order of their oldest member's claim."""
    groups: dict[Hashable, list[list[Member]]] = {}
    for member in members:
        if member.ended:
            continue
        try:
            signature = member.engine.batch_signature(member.job, member.prepared)
        except Exception:
            log.exception("task %s: no batch signature; running it alone", member.task.id)
            signature = None
        key = ("alone", member.task.id) if signature is None else (id(member.engine), signature)
        chunks = groups.setdefault(key, [[]])
        if chunks[-1] and _rows(chunks[-1]) + _rows([member]) > max_rows:
            chunks.append([])
        chunks[-1].append(member)
    return [chunk for chunks in groups.values() for chunk in chunks]


def _rows(members: list[Member]) -> int:
    return sum(int(member.job.params.get("samples", 1) or 1) for member in members)


class EndOnKill:
    """A batch member's step callback: when the member is killed, ``end`` ends its task at once,
    then TaskKilled goes on to the engine, which drops the member from the batch."""

    def __init__(self, progress: StepProgress, end: Callable[[BaseException], None]) -> None:
        self._progress = progress
        self._end = end

    def __call__(self, step: int, total: int) -> None:
        try:
            self._progress(step, total)
        except TaskKilled as exc:
            self._end(exc)
            raise

    def take_preview(self, step: int, total: int, source: Callable[[], Any]) -> None:
        self._progress.take_preview(step, total, source)
