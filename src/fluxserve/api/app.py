"""create_app: the FastAPI application around a set of ApiServices."""

from __future__ import annotations

from fastapi import FastAPI

from fluxserve import __version__
from fluxserve.api.errors import install_error_handlers
from fluxserve.api.guard import RequestGuard
from fluxserve.api.metrics import build_registry
from fluxserve.api.openai import routes as openai_routes
from fluxserve.api.routes import events, file, health, metrics, playground, run, socket, task, tool
from fluxserve.api.services import ApiServices


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(title="fluxserve", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.services = services
    app.state.metrics_registry = build_registry(
        services.store, lambda: (spec.tool for spec in services.catalog)
    )
    install_error_handlers(app)
    app.add_middleware(RequestGuard, max_body_bytes=services.max_upload_bytes)
    for module in (health, metrics, run, task, tool, file, socket, events, openai_routes, playground):
        app.include_router(module.router)
    return app
