"""JSON log lines carry the task of the thread that logs them."""

from __future__ import annotations

import io
import json
import logging
import threading

from fluxserve.logs import JsonFormatter, TaskContextFilter, TextFormatter, task_context


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test-logs-{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_task_only_inside_its_context() -> None:
    logger, stream = _capture(JsonFormatter())
    logger.info("starting")
    with task_context(7, "mobile-app", "black-forest-labs/FLUX.1-Krea-dev"):
        logger.info("task %s step %d", 7, 3)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    outside, inside, failed = (
        json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")
    )
    assert "task_id" not in outside and outside["message"] == "starting"
    assert inside["message"] == "task 7 step 3" and inside["level"] == "INFO"
    assert (inside["task_id"], inside["project"], inside["tool"]) == (
        "7",
        "mobile-app",
        "black-forest-labs/FLUX.1-Krea-dev",
    )
    assert failed["task_id"] == "7" and "ValueError: boom" in failed["exception"]


def test_contexts_of_different_threads_do_not_mix() -> None:
    logger, stream = _capture(JsonFormatter())
    barrier = threading.Barrier(2)

    def work(task_id: int) -> None:
        with task_context(task_id, "p", "t"):
            barrier.wait()
            logger.info("task %s", task_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for line in stream.getvalue().splitlines():
        entry = json.loads(line)
        assert entry["message"] == f"task {entry['task_id']}"


def test_text_lines_append_the_task() -> None:
    logger, stream = _capture(TextFormatter())
    with task_context(3, "p", "a/b"):
        logger.info("hello")
    assert stream.getvalue().rstrip().endswith("hello [task=3 project=p tool=a/b]")
