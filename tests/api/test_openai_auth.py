"""Bearer authentication of the OpenAI routes, on a real store: key-only and signature projects."""

from __future__ import annotations

import pytest

from fluxserve.api.openai.auth import authenticate_bearer
from fluxserve.errors import AuthenticationError
from fluxserve.tasks.store import TaskStore


@pytest.fixture
def store(tmp_path) -> TaskStore:
    store = TaskStore.open(f"sqlite:///{tmp_path / 'auth.db'}")
    store.ensure_project("signed-key", "signed-secret", True)
    store.ensure_project("plain-key", "plain-secret", False)
    return store


def test_key_only_project_opens_with_the_key(store: TaskStore) -> None:
    assert authenticate_bearer("Bearer plain-key", store).api_key == "plain-key"
    assert authenticate_bearer("bearer plain-key:plain-secret", store).api_key == "plain-key"


def test_signature_project_needs_key_and_secret(store: TaskStore) -> None:
    assert authenticate_bearer("Bearer signed-key:signed-secret", store).api_key == "signed-key"
    with pytest.raises(AuthenticationError, match="key alone"):
        authenticate_bearer("Bearer signed-key", store)
    with pytest.raises(AuthenticationError, match="secret"):
        authenticate_bearer("Bearer signed-key:wrong", store)


@pytest.mark.parametrize("header", ["", "Basic abc", "Bearer ", "Bearer unknown-key"])
def test_missing_or_unknown_tokens_are_refused(store: TaskStore, header: str) -> None:
    with pytest.raises(AuthenticationError):
        authenticate_bearer(header, store)
