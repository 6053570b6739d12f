"""Client test fixtures: a scripted fake API on loopback (the real service is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from client_fakes import FakeApi


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi().start()
    yield api
    api.stop()
