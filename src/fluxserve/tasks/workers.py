"""The worker directory: which workers exist, what each can run, and whether it is alive.

Each worker writes its row when it starts (id, host, device, tools it claims, tools it cannot run
and why, version) and renews ``expires_at`` with every heartbeat; a worker is *live* while
``expires_at`` lies in the future, so readers need no knowledge of the workers' heartbeat settings.
A clean stop deletes the row; a killed worker's row stays (shown as lost) until it is forgotten.
``draining`` is set from outside (``fluxserve workers drain``): the worker stops claiming and exits
once its running tasks are done.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from fluxserve.tasks import schema
from fluxserve.tasks.status import RUNNING_STATUSES


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker tells the directory about itself when it starts."""

    id: str
    host: str
    pid: int
    device: str
    tools: list[str]
    unavailable: dict[str, str] = field(default_factory=dict)  # tool slug -> why not
    version: str = ""
    threads: int = 1


@dataclass(frozen=True)
class WorkerRow:
    info: WorkerInfo
    started_at: float
    heartbeat_at: float
    expires_at: float
    draining: bool
    running: list[int] = field(default_factory=list)  # ids of the tasks it is running

    def state(self, now: float) -> str:
        """live | draining | lost (no heartbeat in time: killed, crashed or cut off)."""
        if self.expires_at <= now:
            return "lost"
        return "draining" if self.draining else "live"


class WorkerDirectory:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def register(self, info: WorkerInfo, ttl: float) -> None:
        w = schema.workers
        now = time.time()
        values = {
            "host": info.host,
            "pid": info.pid,
            "device": info.device,
            "tools": sorted(info.tools),
            "unavailable": dict(info.unavailable),
            "version": info.version,
            "threads": info.threads,
            "started": now,
            "last_seen": now,
            "expires_at": now + ttl,
            "draining": False,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.delete(w).where(w.c.id == info.id))
            conn.execute(sa.insert(w).values(id=info.id, **values))

    def beat(self, worker_id: str, ttl: float) -> bool | None:
        """Renew a worker's liveness. Returns its draining flag, or None when its row is gone."""
        w = schema.workers
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(w).where(w.c.id == worker_id).values(last_seen=now, expires_at=now + ttl))
            draining = conn.execute(sa.select(w.c.draining).where(w.c.id == worker_id)).scalar()
        return None if draining is None else bool(draining)

    def unregister(self, worker_id: str) -> None:
        w = schema.workers
        with self.engine.begin() as conn:
            conn.execute(sa.delete(w).where(w.c.id == worker_id))

    def drain(self, worker_ids: Iterable[str]) -> list[str]:
        """Ask workers (by id or id prefix, e.g. a host name) to finish their tasks and stop."""
        w = schema.workers
        drained: list[str] = []
        with self.engine.begin() as conn:
            for wanted in worker_ids:
                ids = conn.execute(
                    sa.select(w.c.id).where(sa.or_(w.c.id == wanted, w.c.id.startswith(wanted + ":")))
                ).scalars()
                for worker_id in ids:
                    conn.execute(sa.update(w).where(w.c.id == worker_id).values(draining=True))
                    drained.append(worker_id)
        return drained

    def forget_lost(self, older_than: float, now: float | None = None) -> int:
        """Delete rows of workers that have been lost for ``older_than`` seconds."""
        w = schema.workers
        cutoff = (time.time() if now is None else now) - older_than
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(w).where(w.c.expires_at < cutoff)).rowcount

    def all(self) -> list[WorkerRow]:
        """Every known worker (live, draining and lost), oldest first, with the tasks it runs."""
        w, t = schema.workers, schema.tasks
        running = [s.value for s in RUNNING_STATUSES]
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(w).order_by(w.c.started, w.c.id)).mappings())
            busy: dict[str, list[int]] = {}
            for task_id, worker_id in conn.execute(
                sa.select(t.c.id, t.c.worker_id).where(t.c.status.in_(running)).order_by(t.c.id)
            ):
                busy.setdefault(worker_id, []).append(task_id)
        return [_row(row, busy.get(row["id"], [])) for row in rows]

    def live(self, now: float | None = None) -> list[WorkerRow]:
        """Workers whose heartbeat is current (draining ones included: they still finish tasks)."""
        w = schema.workers
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(w).where(w.c.expires_at > now).order_by(w.c.id)).mappings()
            return [_row(row, []) for row in rows]


def _row(row, running: list[int]) -> WorkerRow:
    info = WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        device=row["device"],
        tools=list(row["tools"] or []),
        unavailable=dict(row["unavailable"] or {}),
        version=row["version"],
        threads=row["threads"],
    )
    return WorkerRow(
        info, row["started"], row["last_seen"], row["expires_at"], bool(row["draining"]), running
    )
