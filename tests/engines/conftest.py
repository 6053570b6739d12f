"""Engine test fixtures: one folder of tiny FLUX.1 weights for the whole session.

Other test packages that need the same weights can call
:func:`fluxserve.engines.tiny.build_tiny_weights` on their own session folder (it is idempotent and
takes a few seconds), or depend on the ``tiny_weights_dir`` fixture from here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxserve.engines.base import EngineConfig
from fluxserve.engines.tiny import build_tiny_weights


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny weights folder (``<root>/black-forest-labs/FLUX.1-dev/`` ...), built once per session."""
    return build_tiny_weights(tmp_path_factory.mktemp("tiny-weights"))


@pytest.fixture
def tiny_config(tiny_weights_dir: Path, tmp_path: Path) -> EngineConfig:
    """An EngineConfig running on the session's tiny weights, with its own data dir, on the CPU."""
    return EngineConfig(data_dir=tmp_path / "data", weights=str(tiny_weights_dir), device="cpu")
