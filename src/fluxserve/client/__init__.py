"""The fluxserve SDK: talk to a fluxserve instance or the hosted Wiro API (same wire format).

Imports no server code (no torch, SQLAlchemy, FastAPI), so it installs and starts light::

    from fluxserve.client import Client

    with Client("http://127.0.0.1:8000", api_key="...", api_secret="...") as client:
        task = client.run("wiro/text-to-image-flux-lora-fast", prompt="a red fox", steps=4)
        finished = client.wait(task, on_progress=print)
        paths = client.download(finished, "out")
"""

from fluxserve.client.aio import AsyncClient
from fluxserve.client.errors import (
    AuthError,
    Conflict,
    FluxserveAPIError,
    NotFound,
    RateLimited,
    ServerError,
    TaskFailed,
    TransportError,
    ValidationFailed,
    WaitTimeout,
)
from fluxserve.client.models import (
    ApiError,
    Error,
    Output,
    Progress,
    Task,
    TaskHandle,
    TaskList,
    Tool,
    ToolInput,
)
from fluxserve.client.signing import Signer, sign
from fluxserve.client.sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthError",
    "Client",
    "Conflict",
    "Error",
    "FluxserveAPIError",
    "NotFound",
    "Output",
    "Progress",
    "RateLimited",
    "ServerError",
    "Signer",
    "Task",
    "TaskFailed",
    "TaskHandle",
    "TaskList",
    "Tool",
    "ToolInput",
    "TransportError",
    "ValidationFailed",
    "WaitTimeout",
    "sign",
]
