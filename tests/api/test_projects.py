"""The project cache behind authentication: no store read per request, key changes still seen."""

from __future__ import annotations

from pathlib import Path

from fluxserve.api.projects import ProjectCache
from fluxserve.tasks.store import TaskStore


class CountingStore(TaskStore):
    reads = 0

    def project_by_key(self, api_key: str):
        self.reads += 1
        return super().project_by_key(api_key)


def _store(tmp_path: Path) -> CountingStore:
    store = CountingStore(TaskStore.open(f"sqlite:///{tmp_path / 'db.sqlite'}").engine)
    store.ensure_project("key", "old-secret", require_signature=True)
    return store


def test_a_cached_project_answers_without_reading_the_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    cache = ProjectCache(store, max_age=3600)
    assert cache.cached("key") is None
    assert cache.project_by_key("key").api_secret == "old-secret"
    reads = store.reads
    for _ in range(100):
        assert cache.project_by_key("key").api_secret == "old-secret"
    assert cache.cached("key") is not None and store.reads == reads


def test_a_changed_secret_or_a_removed_key_is_seen_once_the_entry_is_old(tmp_path: Path) -> None:
    store = _store(tmp_path)
    cache = ProjectCache(store, max_age=0.0)  # every entry is already old
    assert cache.project_by_key("key").api_secret == "old-secret"
    store.ensure_project("key", "new-secret", require_signature=False)
    changed = cache.project_by_key("key")
    assert changed.api_secret == "new-secret" and changed.require_signature is False
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM projects")
    assert cache.project_by_key("key") is None and cache.cached("key") is None


def test_unknown_keys_are_not_remembered(tmp_path: Path) -> None:
    store = _store(tmp_path)
    cache = ProjectCache(store, max_age=3600)
    reads = store.reads
    assert cache.project_by_key("made-up") is None
    assert cache.project_by_key("made-up") is None
    assert store.reads == reads + 2


def test_a_project_command_empties_the_cache_at_once(tmp_path: Path) -> None:
    from fluxserve.tasks.projects import changes_marker, mark_changed

    store = _store(tmp_path)
    alpha = store.projects.create("alpha")
    cache = ProjectCache(store, max_age=3600, marker=changes_marker(tmp_path))
    assert cache.project_by_key(alpha.api_key) is not None
    store.projects.rotate("alpha")  # what `fluxserve project rotate alpha` does …
    assert cache.project_by_key(alpha.api_key) is not None  # … unseen while the entry is fresh
    mark_changed(tmp_path)  # … and then it touches the marker
    assert cache.cached(alpha.api_key) is None
    assert cache.project_by_key(alpha.api_key) is None  # the old key is refused from now on
