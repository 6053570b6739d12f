"""Engine test fixtures.

``tiny_weights_dir`` (one folder of tiny FLUX.1 weights and LoRAs per session) comes from the
project's tests/conftest.py, built with :func:`fluxserve.engines.tiny.build_tiny_weights`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxserve.engines.base import EngineConfig


@pytest.fixture
def tiny_config(tiny_weights_dir: Path, tmp_path: Path) -> EngineConfig:
    """An EngineConfig running on the session's tiny weights, with its own data dir, on the CPU."""
    return EngineConfig(data_dir=tmp_path / "data", weights=str(tiny_weights_dir), device="cpu")
