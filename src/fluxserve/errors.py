"""The one exception hierarchy of fluxserve. Nothing here knows about HTTP.

::

    FluxserveError
    ├── ClientError                 the caller sent something we cannot accept
    │   ├── ValidationError         one or more fields are invalid (carries FieldError list)
    │   ├── MalformedRequestError   the body could not be parsed at all
    │   ├── MissingIdentifierError  a task action without taskid / socketaccesstoken
    │   ├── AuthenticationError     missing/unknown key, bad signature, stale nonce
    │   ├── NotFoundError           unknown tool or task (Wiro answers these with HTTP 200)
    │   │   ├── TaskNotFoundError
    │   │   └── ToolNotFoundError
    │   ├── ConflictError           the task is in a state that does not allow the action
    │   │   ├── NotCancellableError
    │   │   └── NotKillableError
    │   ├── ToolUnavailableError    the tool exists but its backend is not configured here
    │   └── LimitReachedError       a limit refuses the task for now (Wiro's code 96: retry later)
    │       ├── ConcurrencyLimitError   the project has max_concurrent unfinished tasks
    │       └── QueueFullError          the server's queue holds max_queued_tasks
    ├── TaskFailure                 a task could not be completed; the message is shown as debugerror
    │   ├── InputFetchError         an input URL/file could not be fetched or decoded
    │   │   └── UrlRefusedError     the URL may never be requested (malformed, not http(s), private)
    │   └── WeightsUnavailableError model weights could not be loaded
    └── TaskKilled                  raised out of the step callback when a kill was requested
"""

from __future__ import annotations

from dataclasses import dataclass


class FluxserveError(Exception):
    """Base of every error fluxserve raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One invalid request field: which one, and what is allowed instead."""

    field: str
    message: str
    file: bool = False  # the field is a file input (Wiro words these "Request files [...]")

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ClientError(FluxserveError):
    """The request cannot be accepted as sent; the message is safe to show the caller."""

    code: int = 0


class ValidationError(ClientError):
    """Invalid input fields. ``errors`` lists every problem found, not only the first."""

    code = 0

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class MalformedRequestError(ClientError):
    code = 0


class MissingIdentifierError(ClientError):
    code = 0


class AuthenticationError(ClientError):
    code = 0


class NotFoundError(ClientError):
    code = 1


class TaskNotFoundError(NotFoundError):
    pass


class ToolNotFoundError(NotFoundError):
    pass


class ConflictError(ClientError):
    code = 1


class NotCancellableError(ConflictError):
    pass


class NotKillableError(ConflictError):
    pass


class ToolUnavailableError(ClientError):
    code = 1


class LimitReachedError(ClientError):
    """Nothing was created; the same request succeeds once tasks finish (Wiro answers HTTP 200)."""

    code = 96


class ConcurrencyLimitError(LimitReachedError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "You have reached your concurrent task limit. This project can run up to "
            f"{limit} tasks at the same time. Wait for a running task to finish."
        )


class QueueFullError(LimitReachedError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The server's task queue is full ({limit} tasks waiting). Wait for queued tasks to start, "
            "then retry."
        )


class TaskFailure(FluxserveError):
    """A task failed; ``str(exc)`` becomes the task's debugerror, so write it for the user."""


class InputFetchError(TaskFailure):
    pass


class UrlRefusedError(InputFetchError):
    """The URL may never be requested (malformed, not http(s), or a non-public address): retrying
    cannot help, unlike a timeout or a refused connection."""


class WeightsUnavailableError(TaskFailure):
    pass


class TaskKilled(FluxserveError):
    """Raised from inside the denoising loop to stop a task whose kill flag is set."""
