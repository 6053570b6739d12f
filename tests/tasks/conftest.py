"""Fixtures shared by the task-store tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxserve.tasks.store import TaskStore
from tests.support.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TaskStore:
    """The same store code on SQLite (the default) and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return TaskStore.open(f"sqlite:///{tmp_path / 'tasks.db'}")
    server: PostgresServer = request.getfixturevalue("postgres")
    return TaskStore.open(server.new_database())
