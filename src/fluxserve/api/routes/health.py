"""Liveness: 200 once the server accepts requests (and its database answers)."""

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
    store = services(request).store

    def ping() -> None:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except Exception as exc:
        return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok"})
