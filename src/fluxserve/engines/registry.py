"""Which engine runs which catalog ``engine`` name, built lazily and kept for the worker's life.

Factories are named as ``"module:function"`` strings so that importing this module (from the API
process, for instance, to ask whether a tool can run here) never imports torch or diffusers.
A factory is called as ``factory(config, registry)`` and returns an :class:`Engine`; engines that
share weights reach the shared model home through ``registry.shared(key, build)``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from fluxserve.engines.base import Engine, EngineConfig
from fluxserve.errors import ToolUnavailableError

log = logging.getLogger(__name__)

ENGINE_FACTORIES: dict[str, str] = {
    "flux1-krea-dev": "fluxserve.engines.flux_text:build_krea_engine",
    "flux1-dev-lora": "fluxserve.engines.flux_lora:build_lora_engine",
    "flux1-kontext-dev-2image": "fluxserve.engines.flux_kontext:build_kontext_engine",
    "bfl-flux-pro-1.1-ultra": "fluxserve.engines.partner:build_ultra_engine",
    "bfl-flux-2-pro": "fluxserve.engines.partner:build_flux2_pro_engine",
}
"""Catalog engine name -> ``module:function`` building it. Modules add their own line here."""

AVAILABILITY_CHECKS: dict[str, str] = {
    "bfl-flux-pro-1.1-ultra": "fluxserve.engines.partner:ultra_unavailable",
    "bfl-flux-2-pro": "fluxserve.engines.partner:flux2_pro_unavailable",
}
"""Catalog engine name -> ``module:function(config) -> str | None``; must not import torch."""


def _resolve(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class EngineRegistry:
    """Builds each engine once, on first use, and hands the same instance to every worker thread."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._engines: dict[str, Engine] = {}
        self._shared: dict[str, Any] = {}
        self._lock = threading.RLock()

    def unavailable_reason(self, engine_name: str) -> str | None:
        """Why tasks for ``engine_name`` cannot run on this instance, or None if they can."""
        if engine_name not in ENGINE_FACTORIES:
            return f"this fluxserve build has no engine '{engine_name}' yet"
        check = AVAILABILITY_CHECKS.get(engine_name)
        return _resolve(check)(self.config) if check else None

    def get(self, engine_name: str) -> Engine:
        reason = self.unavailable_reason(engine_name)
        if reason:
            raise ToolUnavailableError(reason)
        with self._lock:
            engine = self._engines.get(engine_name)
            if engine is None:
                log.info("building engine %s", engine_name)
                engine = _resolve(ENGINE_FACTORIES[engine_name])(self.config, self)
                self._engines[engine_name] = engine
            return engine

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        """One object per ``key`` for the whole process (e.g. the model home with shared encoders)."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = build()
            return self._shared[key]
