"""Liveness: 200 once the server accepts requests (and its database answers), with worker counts."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from fluxserve.api.deps import services

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """``{"status": "ok", "workers": {"live": n, "draining": n, "lost": n}}``; 503 if the database is down."""
    svc = services(request)

    def check() -> dict[str, int] | None:
        with svc.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return svc.cluster.counts() if svc.cluster is not None else None

    try:
        workers = await run_in_threadpool(check)
    except Exception as exc:
        return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
    body: dict = {"status": "ok"}
    if workers is not None:
        body["workers"] = workers
    return JSONResponse(body)
