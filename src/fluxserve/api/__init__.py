"""The HTTP API: Wiro's wire format on FastAPI/Starlette. Never imports engines or torch."""

from fluxserve.api.app import ApiServices, create_app

__all__ = ["ApiServices", "create_app"]
