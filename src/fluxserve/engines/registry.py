"""Which engine runs which catalog ``engine`` name, built lazily and kept for the worker's life.

What each engine is comes from its module's :class:`~fluxserve.engines.spec.EngineSpec` (see
:mod:`fluxserve.engines.spec`). Factories and availability checks are named as ``"module:function"``
strings so that asking whether a tool can run here (the API process does) never imports torch or
diffusers. A factory is called as ``factory(config, registry)`` and returns an :class:`Engine`;
engines that share weights reach the shared model home through ``registry.shared(key, build)``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fluxserve.engines.base import Engine, EngineConfig
from fluxserve.engines.spec import engine_specs, resolve
from fluxserve.errors import ToolUnavailableError

log = logging.getLogger(__name__)


class EngineRegistry:
    """Builds each engine once, on first use, and hands the same instance to every worker thread."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._engines: dict[str, Engine] = {}
        self._shared: dict[str, Any] = {}
        self._lock = threading.RLock()

    def unavailable_reason(self, engine_name: str) -> str | None:
        """Why tasks for ``engine_name`` cannot run on this instance, or None if they can."""
        spec = engine_specs().get(engine_name)
        if spec is None:
            return f"this fluxserve build has no engine '{engine_name}' yet"
        return resolve(spec.availability)(self.config) if spec.availability else None

    def get(self, engine_name: str) -> Engine:
        reason = self.unavailable_reason(engine_name)
        if reason:
            raise ToolUnavailableError(reason)
        with self._lock:
            engine = self._engines.get(engine_name)
            if engine is None:
                log.info("building engine %s", engine_name)
                engine = resolve(engine_specs()[engine_name].factory)(self.config, self)
                self._engines[engine_name] = engine
            return engine

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        """One object per ``key`` for the whole process (e.g. the model home with shared encoders)."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = build()
            return self._shared[key]
