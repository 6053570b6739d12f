"""The event channel between worker processes and API processes.

Workers send :class:`~fluxserve.tasks.events.TaskEvent` s (statuses, progress, ends) to every API
process; API processes send :class:`Control` messages (kill a task, a task was queued) to every
worker. Two implementations with the same two endpoint shapes:

* :mod:`fluxserve.channel.local` — the embedded default (SQLite): a Unix socket in the data dir,
  served by the API process; its supervised workers (and standalone ``fluxserve worker`` processes
  on the same machine and data dir) connect to it.
* :mod:`fluxserve.channel.postgres` — when the store is PostgreSQL: LISTEN/NOTIFY, so workers and
  API processes on any number of machines reach each other through the database they share.

Delivery is best effort and takes milliseconds; nothing depends on it for correctness. The store
stays the record (kill flag, statuses, progress) and live followers fall back to reading it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fluxserve.tasks.events import TaskEvent

EventHandler = Callable[[TaskEvent], None]


@dataclass(frozen=True)
class Control:
    """An API -> worker message: ``kill`` (``task_id`` set) or ``wake`` (a task was queued)."""

    kind: str
    task_id: int = 0


ControlHandler = Callable[[Control], None]


class ApiEndpoint(Protocol):
    """The API process's end: hears worker events, sends controls to workers."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def send_control(self, control: Control) -> None:
        """Deliver to every worker; never blocks on a slow one for long."""
        ...

    def share_event(self, event: TaskEvent) -> None:
        """Tell other API processes about an event decided here (e.g. a Cancel); no-op when alone."""
        ...


class WorkerEndpoint(Protocol):
    """A worker process's end: sends task events, hears controls."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def send_event(self, event: TaskEvent) -> None: ...


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql", "postgres"))


def open_api_endpoint(database_url: str, data_dir, on_event: EventHandler) -> ApiEndpoint:
    """PostgreSQL LISTEN/NOTIFY for a PostgreSQL store, else the Unix socket in ``data_dir``."""
    if is_postgres(database_url):
        from fluxserve.channel.postgres import PgApiEndpoint

        return PgApiEndpoint(database_url, on_event)
    from fluxserve.channel.local import LocalHub, socket_path

    return LocalHub(socket_path(data_dir), on_event)


class Listening(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def project_changes(database_url: str, on_change: Callable[[], None]) -> Listening | None:
    """A listener for project changes announced by the store on PostgreSQL; None on SQLite, where
    the ``fluxserve project`` commands' marker file (one machine) does the same job."""
    if not is_postgres(database_url):
        return None
    from fluxserve.channel.postgres import project_changes_listener

    return project_changes_listener(database_url, on_change)


def open_worker_endpoint(database_url: str, data_dir, on_control: ControlHandler) -> WorkerEndpoint:
    if is_postgres(database_url):
        from fluxserve.channel.postgres import PgWorkerEndpoint

        return PgWorkerEndpoint(database_url, on_control)
    from fluxserve.channel.local import LocalLink, socket_path

    return LocalLink(socket_path(data_dir), on_control)
