"""GET /metrics: Prometheus text format (no credentials, like /healthz: restrict it at the proxy)."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

router = APIRouter()


@router.get("/metrics", include_in_schema=True)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    return Response(await run_in_threadpool(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)
