"""``fluxserve workers``: the worker directory as a table (or JSON), and ``drain``."""

from __future__ import annotations

import time
from typing import Any

from fluxserve.tasks.workers import WorkerRow


def worker_json(row: WorkerRow, now: float) -> dict[str, Any]:
    info = row.info
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "device": info.device,
        "state": row.state(now),
        "tools": info.tools,
        "unavailable": info.unavailable,
        "version": info.version,
        "threads": info.threads,
        "running": row.running,
        "started": round(row.started_at),
        "last_heartbeat_seconds_ago": round(max(0.0, now - row.heartbeat_at), 1),
    }


def worker_lines(rows: list[WorkerRow], now: float | None = None) -> list[str]:
    """One header line and one line per worker; tools a worker cannot run are listed with why."""
    now = time.time() if now is None else now
    if not rows:
        return ["no workers have registered (start one with `fluxserve worker`)"]
    lines = [f"{'ID':<40} {'STATE':<9} {'DEVICE':<8} {'VERSION':<8} {'BEAT':>6}  RUNNING  TOOLS"]
    for row in rows:
        item = worker_json(row, now)
        running = ",".join(str(task) for task in row.running) or "-"
        lines.append(
            f"{item['id']:<40} {item['state']:<9} {item['device']:<8} {item['version']:<8} "
            f"{item['last_heartbeat_seconds_ago']:>5}s  {running:<7}  {', '.join(item['tools']) or '-'}"
        )
        lines += [
            f"{'':<40}   cannot run {tool}: {why}" for tool, why in sorted(row.info.unavailable.items())
        ]
    return lines
