"""Fixtures for the net tests: one loopback server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loopback_http import LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer().start()
    yield srv
    srv.stop()
