"""Exceptions raised by the client SDK. Every one carries ``code``, ``message`` and ``status``.

::

    FluxserveError                      (fluxserve.errors: the project's one root)
    └── FluxserveAPIError               code, message, status (HTTP status, 0 if none)
        ├── AuthError                   HTTP 401/403: unknown key, bad signature, stale nonce
        ├── ValidationFailed            HTTP 400 or caught client-side; ``fields`` names the inputs
        ├── NotFound                    unknown task or tool (Wiro answers these with HTTP 200, code 1)
        ├── Conflict                    the task's state does not allow the action (code 1)
        ├── RateLimited                 HTTP 429 and the retries are spent
        ├── ServerError                 HTTP 5xx and the retries are spent, or a body that is not JSON
        ├── TransportError              the server could not be reached (status 0)
        ├── TaskFailed                  the task ended with pexit != "0"; carries ``debugerror`` and ``task``
        └── WaitTimeout                 wait() gave up before the task reached a terminal status
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluxserve.errors import FieldError, FluxserveError

if TYPE_CHECKING:
    from fluxserve.client.models import ApiError, Task


class FluxserveAPIError(FluxserveError):
    """An error answered by (or about) the API. ``str(exc)`` is one line fit for a terminal."""

    def __init__(
        self, message: str, *, code: int = 0, status: int = 0, errors: list[ApiError] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.errors = list(errors or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, status={self.status}, message={self.message!r})"


class AuthError(FluxserveAPIError):
    pass


class ValidationFailed(FluxserveAPIError):
    """``fields`` lists each invalid input and what it accepts (empty if the server did not say)."""

    def __init__(self, message: str, *, fields: list[FieldError] | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.fields = list(fields or [])


class NotFound(FluxserveAPIError):
    pass


class Conflict(FluxserveAPIError):
    pass


class RateLimited(FluxserveAPIError):
    pass


class ServerError(FluxserveAPIError):
    pass


class TransportError(FluxserveAPIError):
    pass


class TaskFailed(FluxserveAPIError):
    """The task finished with a non-zero ``pexit``; ``debugerror`` is the server's explanation."""

    def __init__(self, task: Task) -> None:
        reason = task.debugerror.strip() or f"pexit {task.pexit}"
        super().__init__(f"task {task.id} failed: {reason}", code=_int(task.pexit))
        self.task = task
        self.debugerror = task.debugerror


class WaitTimeout(FluxserveAPIError):
    """``task`` is the last state seen (None if the task was never read)."""

    def __init__(self, message: str, task: Task | None = None) -> None:
        super().__init__(message)
        self.task = task


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 1
