"""OpenAI requests count in the project's limits, a key-only project opens with its key, and the
bounded wait ends in a clear 504 while the task stays queued (server without a worker)."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.support.service import Service


def test_key_only_project_limits_and_the_bounded_wait(make_service: Callable[..., Service]) -> None:
    server = make_service(FLUXSERVE_WORKERS="0", FLUXSERVE_OPENAI_WAIT_SECONDS="1")
    store = server.open_store()
    project = store.projects.create("openai-app", require_signature=False, max_concurrent=1)
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=project.api_key, max_retries=0)

    with pytest.raises(openai.InternalServerError) as waited:  # 504: nothing runs the task
        client.images.generate(model="flux-krea-dev", prompt="first", size="64x64")
    assert waited.value.status_code == 504 and waited.value.body["code"] == "timeout"
    assert waited.value.response.headers["x-should-retry"] == "false"
    taskid = waited.value.message.split("Task ", 1)[1].split(" ", 1)[0]
    (task,) = [t for t in store.list(project.id)[1] if t.taskid == taskid]
    assert task.status.value == "task_queue" and task.parameters["prompt"] == "first"

    with pytest.raises(openai.RateLimitError) as limited:  # the queued task holds the only slot
        client.images.generate(model="flux-krea-dev", prompt="second", size="64x64")
    assert limited.value.status_code == 429 and limited.value.body["type"] == "rate_limit_exceeded"
    assert store.list(project.id)[0] == 1
