"""EventSender: a worker's events go out to the channel from a thread of their own.

Sending an event wakes the API process (a Unix-socket write, or a NOTIFY on PostgreSQL). On a busy
machine that write can cost the sending thread its CPU slice, and the sending thread was the one
running the generation: about a tenth of a tiny task's time went to sends. The worker's threads now
only queue the event; one sender thread writes them, in the order they were published.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from fluxserve.tasks.events import TaskEvent

log = logging.getLogger(__name__)

_STOP = object()


class EventSender:
    """An ``EventSink`` whose ``publish`` queues the event for ``send`` on the sender thread."""

    def __init__(self, send: Callable[[TaskEvent], None]) -> None:
        self._send = send
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fluxserve-event-sender", daemon=True)
        self._thread.start()

    def publish(self, event: TaskEvent) -> None:
        if self._thread is None:  # not started (or stopped): send from the caller, as before
            self._send(event)
        else:
            self._queue.put(event)

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued, then end the sender thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            try:
                self._send(event)
            except Exception:  # one lost event must not stop the others (followers fall back to the store)
                log.warning("could not send a task event", exc_info=True)
