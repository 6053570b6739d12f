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
    """``live=True``: :meth:`wait` follows the task's Server-Sent Events instead of polling Detail —
    the way a client that waits for its result should (no CPU spent asking, the end seen at once);
    on a 2-core box a client polling every 10 ms takes ~8 % of a core from the workers it measures."""

    def __init__(self, service: Service, poll_seconds: float = 0.05, live: bool = False) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self.live = live
        self._tokens: dict[str, str] = {}
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
        answer = self.post(f"/v1/Run/{tool}", inputs)
        self._tokens[answer["taskid"]] = answer["socketaccesstoken"]
        return answer["taskid"]

    def wait(self, taskid: str, timeout: float = 900.0) -> dict[str, Any]:
        """The task once it has ended: followed live (``live``) or polled every ``poll_seconds``."""
        if self.live and taskid in self._tokens:
            return self._follow(taskid, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.post("/v1/Task/Detail", {"taskid": taskid})["tasklist"][0]
            if task["status"] in DONE:
                return task
            time.sleep(self.poll_seconds)
        raise AssertionError(f"task {taskid} still {task['status']} after {timeout}s")

    def _follow(self, taskid: str, timeout: float) -> dict[str, Any]:
        """Read the task's event stream to its end (it closes after the terminal frame), then the task."""
        path = f"/v1/Task/Events/{self._tokens[taskid]}"
        with self._http.stream("GET", path, timeout=timeout) as response:
            assert response.status_code == 200, response.status_code
            for _ in response.iter_bytes():
                pass
        task = self.post("/v1/Task/Detail", {"taskid": taskid})["tasklist"][0]
        assert task["status"] in DONE, task["status"]
        return task

    def download(self, url: str) -> bytes:
        response = self._http.get(url)
        assert response.status_code == 200, response.status_code
        return response.content
