"""Migration 0004 on a database that already holds tasks: they get the empty batch key (never
batched) and are still claimed one at a time; new tasks carry their key."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from fluxserve.tasks.store import TaskStore, create_db_engine


def test_tasks_queued_before_the_migration_are_claimed_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_db_engine(url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("fluxserve.tasks") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(sa.text("INSERT INTO projects (api_key) VALUES ('k')"))
        for index in range(2):
            connection.execute(
                sa.text(
                    "INSERT INTO tasks (uuid, token, project_id, tool, inputs, parameters, files, status) "
                    "VALUES (:uuid, :token, 1, 'a/b', '{}', '{}', '{}', 'task_queue')"
                ),
                {"uuid": f"u{index}", "token": f"t{index}"},
            )
    engine.dispose()
    store = TaskStore.open(url)  # migrates to the newest revision
    assert [task.batch_key for task in store.claim_batch("w", 30, limit=4)] == [""]
    assert len(store.claim_batch("w", 30, limit=4)) == 1
    fresh = [store.create_task(1, "a/b", {}, {}, batch_key="K").id for _ in range(2)]
    assert [task.id for task in store.claim_batch("w", 30, limit=4)] == fresh
