"""create_app: the FastAPI application around a set of ApiServices."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from fluxserve import __version__
from fluxserve.api.errors import install_error_handlers
from fluxserve.api.fast import FastPath
from fluxserve.api.guard import RequestGuard
from fluxserve.api.metrics import build_registry
from fluxserve.api.openai import routes as openai_routes
from fluxserve.api.routes import events, file, health, metrics, playground, run, socket, task, tool
from fluxserve.api.services import ApiServices


class FluxServeApp(FastAPI):
    """FastAPI with the hot path (``api/fast.py``) in front: Task/Detail and Task/List polls are
    answered before FastAPI's middleware, routing and dependency solving run."""

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self.fast_path.route(scope) if self.fast_path is not None else None
        if answer is None:
            await super().__call__(scope, receive, send)
        else:
            await self.fast_path.serve(answer, scope, receive, send)


def create_app(services: ApiServices) -> FluxServeApp:
    app = FluxServeApp(title="fluxserve", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.services = services
    app.state.metrics_registry = build_registry(
        services.store, lambda: (spec.tool for spec in services.catalog)
    )
    install_error_handlers(app)
    app.add_middleware(RequestGuard, max_body_bytes=services.max_upload_bytes)
    for module in (health, metrics, run, task, tool, file, socket, events, openai_routes, playground):
        app.include_router(module.router)
    app.fast_path = FastPath(services)
    return app
