"""Projects in the store: create, rotate, delete, the bootstrap project, limits at task creation."""

from __future__ import annotations

import threading

import pytest

from fluxserve.errors import (
    ConcurrencyLimitError,
    ConflictError,
    NotFoundError,
    QueueFullError,
    ValidationError,
)
from fluxserve.tasks.projects import ip_allowed, parse_allowed_ips
from fluxserve.tasks.status import TaskStatus
from fluxserve.tasks.store import TaskStore


def _task(store: TaskStore, project_id: int, **limits: int):
    return store.create_task(project_id, "a/b", {}, {}, callbackurl="http://example.invalid/x", **limits)


def test_a_created_project_has_fresh_credentials_and_a_whsec_secret(store: TaskStore) -> None:
    project = store.projects.create("alpha", max_concurrent=3, allowed_ips=["10.0.0.0/8", "203.0.113.7"])
    assert len(project.api_key) == 32 and len(project.api_secret) == 48
    assert project.webhook_secret.startswith("whsec_") and len(project.webhook_secret) > 30
    assert project.allowed_ips == ("10.0.0.0/8", "203.0.113.7/32")
    assert store.project_by_key(project.api_key) == project
    key_only = store.projects.create("beta", require_signature=False)
    assert key_only.api_secret == "" and not key_only.require_signature
    assert [p.name for p in store.projects.list()] == ["alpha", "beta"]
    with pytest.raises(ConflictError, match="already exists"):
        store.projects.create("alpha")
    with pytest.raises(ValidationError, match="name"):
        store.projects.create("../etc")
    with pytest.raises(ValidationError, match="allow-ip"):
        store.projects.create("gamma", allowed_ips=["not-an-ip"])


def test_rotation_revokes_the_old_key_at_once(store: TaskStore) -> None:
    old = store.projects.create("alpha")
    task = _task(store, old.id)
    new = store.projects.rotate("alpha")
    assert store.project_by_key(old.api_key) is None
    assert store.project_by_key(new.api_key).id == old.id
    assert new.api_secret != old.api_secret and new.webhook_secret == old.webhook_secret
    assert store.find(new.id, taskid=task.taskid).id == task.id  # the tasks stay the project's
    assert store.projects.rotate("alpha", webhook_secret=True).webhook_secret != old.webhook_secret


def test_deleting_revokes_the_key_and_cancels_queued_tasks(store: TaskStore) -> None:
    project = store.projects.create("alpha")
    task = _task(store, project.id)
    assert store.projects.delete("alpha") == 1
    assert store.project_by_key(project.api_key) is None
    assert store.get(task.id).status is TaskStatus.CANCEL
    assert store.get(task.id).callback_state == "pending"  # its callback still says so
    with pytest.raises(NotFoundError):
        store.projects.by_name("alpha")
    assert store.projects.create("alpha").id != project.id  # the name is free again


def test_the_bootstrap_project_follows_the_settings_and_cannot_be_rotated_or_deleted(
    store: TaskStore,
) -> None:
    first = store.ensure_project("key-1", "secret-1", True, bootstrap=True)
    task = _task(store, first.id)
    changed = store.ensure_project("key-2", "secret-2", False, bootstrap=True)  # settings changed
    assert changed.id == first.id and changed.bootstrap and not changed.require_signature
    assert store.project_by_key("key-1") is None
    assert store.find(changed.id, taskid=task.taskid).id == task.id
    with pytest.raises(ConflictError, match="FLUXSERVE_API_KEY"):
        store.projects.rotate(changed.name)
    with pytest.raises(ConflictError):
        store.projects.delete(changed.name)


def test_the_concurrency_limit_counts_unfinished_tasks_and_creates_nothing_over_it(store: TaskStore) -> None:
    project = store.projects.create("alpha", max_concurrent=2)
    first = _task(store, project.id, max_concurrent=2)
    _task(store, project.id, max_concurrent=2)
    with pytest.raises(ConcurrencyLimitError) as refused:
        _task(store, project.id, max_concurrent=2)
    assert refused.value.code == 96 and "up to 2 tasks at the same time" in str(refused.value)
    assert store.list(project.id)[0] == 2
    store.cancel_queued(first)  # an ended task frees its slot
    _task(store, project.id, max_concurrent=2)
    other = store.projects.create("beta")
    _task(store, other.id, max_concurrent=2)  # the limit is per project


def test_racing_runs_never_exceed_the_concurrency_limit(store: TaskStore) -> None:
    project = store.projects.create("alpha", max_concurrent=3)
    created, refused = [], []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        try:
            created.append(_task(store, project.id, max_concurrent=3))
        except ConcurrencyLimitError:
            refused.append(1)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 3 and len(refused) == 5
    assert store.list(project.id)[0] == 3


def test_the_global_queue_cap(store: TaskStore) -> None:
    alpha, beta = store.projects.create("alpha"), store.projects.create("beta")
    _task(store, alpha.id, max_queued=2)
    _task(store, beta.id, max_queued=2)
    with pytest.raises(QueueFullError, match="2 tasks waiting") as refused:
        _task(store, alpha.id, max_queued=2)
    assert refused.value.code == 96
    store.claim("w", 30)  # a started task no longer waits in the queue
    _task(store, alpha.id, max_queued=2)


def test_ip_allow_lists() -> None:
    store_less = parse_allowed_ips(["10.0.0.0/8", " 2001:db8::/32 ", ""])
    from fluxserve.tasks.records import Project

    project = Project(1, "p", "k", "s", True, allowed_ips=store_less)
    assert ip_allowed(project, "10.1.2.3") and ip_allowed(project, "2001:db8::1")
    assert ip_allowed(project, "::ffff:10.9.9.9")  # an IPv4 client seen through a dual-stack socket
    assert not ip_allowed(project, "127.0.0.1") and not ip_allowed(project, "garbage")
    assert ip_allowed(Project(1, "p", "k", "s", True), "127.0.0.1")  # no list: any address
    assert ip_allowed(Project(1, "p", "k", "s", True, allowed_ips=("*",)), "192.0.2.1")
