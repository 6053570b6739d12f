"""The benches' client of a running service: one kept-alive HTTP connection, signed requests.

``tests.support.service.Service.post`` opens a new ``httpx`` client per request, which costs the
calling process more CPU than fluxserve spends answering it (an SSL context is built every time,
even for plain HTTP). On a 2-core machine that CPU is taken from the generation being measured, so
a bench that polls with it measures its own client. A real client keeps its connection open; so
does this one.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from tests.support.service import Service

DONE = ("task_postprocess_end", "task_cancel")

PRODUCTION: dict[str, str | None] = {"FLUXSERVE_LEASE_SECONDS": None, "FLUXSERVE_POLL_INTERVAL_SECONDS": None}
"""``Service`` overrides that drop the tests' 3 s lease and 0.1 s idle poll (fast recovery for the
tests; a lease renewal a second and ten idle claims a second per worker otherwise): the benches
measure the defaults a deployment runs with."""


class BenchClient:
    def __init__(self, service: Service, poll_seconds: float = 0.05) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self._http = httpx.Client(base_url=service.base_url, timeout=60)

    def __enter__(self) -> BenchClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self._http.post(path, json=body, headers=self.service.headers()).json()
        assert answer["result"] is True, answer
        return answer

    def run(self, tool: str, **inputs: Any) -> str:
        """Queue a task; its taskid."""
        return self.post(f"/v1/Run/{tool}", inputs)["taskid"]

    def wait(self, taskid: str, timeout: float = 900.0) -> dict[str, Any]:
        """Poll Task/Detail every ``poll_seconds`` until the task ended; the task."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.post("/v1/Task/Detail", {"taskid": taskid})["tasklist"][0]
            if task["status"] in DONE:
                return task
            time.sleep(self.poll_seconds)
        raise AssertionError(f"task {taskid} still {task['status']} after {timeout}s")

    def download(self, url: str) -> bytes:
        response = self._http.get(url)
        assert response.status_code == 200, response.status_code
        return response.content
