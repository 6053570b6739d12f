"""The schema check that lets a process skip Alembic when the database is already at the newest
migration (tasks/schema_version.py); the older-revision path is test_batch_key_migration's."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from fluxserve.tasks.schema_version import is_current, packaged_head
from fluxserve.tasks.store import TaskStore, create_db_engine


def test_the_packaged_head_is_alembic_s_head() -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("fluxserve.tasks") / "migrations"))
    assert packaged_head() == ScriptDirectory.from_config(config).get_current_head()


def test_a_fresh_database_is_not_current_until_migrated(store: TaskStore, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with create_db_engine(url).connect() as connection:
        assert not is_current(connection)
    with TaskStore.open(url).engine.connect() as connection:
        assert is_current(connection)
    with store.engine.connect() as connection:  # SQLite and PostgreSQL, as opened by the fixture
        assert is_current(connection)


def test_a_database_stamped_otherwise_is_not_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    engine = TaskStore.open(url).engine
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0003'")
    with engine.connect() as connection:
        assert not is_current(connection)


def test_opening_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    TaskStore.open(url)
    code = (
        "import sys\n"
        "from fluxserve.tasks.store import TaskStore\n"
        f"store = TaskStore.open({url!r})\n"
        "store.create_task(store.ensure_project('k', '', False).id, 'a/b', {}, {})\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
