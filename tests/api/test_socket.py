"""The live socket at /v1 against a real server on the tiny weights, with the `websockets` client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from websockets.sync.client import connect

from tests.support.live import (
    STATUS_ORDER,
    follow,
    is_progress,
    read_all,
    register,
    run_krea,
    socket_url,
    statuses,
)
from tests.support.service import Service


def test_full_event_order_progress_and_outputs(service: Service) -> None:
    run = run_krea(service, steps=6)
    frames = follow(service, run["socketaccesstoken"])

    assert statuses(frames) == STATUS_ORDER
    assert all(f["id"] == run["taskid"] and f["tasktoken"] == run["socketaccesstoken"] for f in frames)
    assert all(f["result"] is True for f in frames)
    kinds = [("progress" if is_progress(f) else f["type"]) for f in frames]
    start, end = kinds.index("task_start"), kinds.index("task_output")
    progress_positions = [i for i, kind in enumerate(kinds) if kind == "progress"]
    assert progress_positions, "no progress frame"
    assert all(start < i < end for i in progress_positions)  # between task_start and task_output
    last = frames[progress_positions[-1]]["message"]
    assert last["type"] == "progressGenerate" and last["task"] == "Generate"
    assert (last["stepCurrent"], last["stepTotal"], last["percentage"]) == ("6", "6", "100")

    outputs = frames[-1]["message"]
    detail = service.wait(run["taskid"])
    assert [(o["name"], o["url"], o["size"]) for o in outputs] == [
        (o["name"], o["url"], o["size"]) for o in detail["outputs"]
    ]
    image = httpx.get(outputs[0]["url"], timeout=30)
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    assert str(len(image.content)) == outputs[0]["size"] and outputs[0]["contenttype"] == "image/png"


def test_one_progress_frame_per_reported_step_with_the_right_total(service: Service) -> None:
    run = run_krea(service, steps=100, size=256)
    frames = follow(service, run["socketaccesstoken"])

    progress = [f["message"] for f in frames if is_progress(f)]
    assert len(progress) >= 2
    steps = [int(p["stepCurrent"]) for p in progress]
    assert steps == sorted(set(steps)) and steps[-1] == 100
    assert {p["stepTotal"] for p in progress} == {"100"}
    assert all(p["percentage"] == p["stepCurrent"] for p in progress)  # 100 steps: percent == step
    assert all(isinstance(value, str) for p in progress for value in p.values())


def test_late_registration_after_completion_gets_the_end_with_outputs(service: Service) -> None:
    run = run_krea(service, steps=2)
    detail = service.wait(run["taskid"])
    assert detail["status"] == "task_postprocess_end"

    frames = follow(service, run["socketaccesstoken"])
    assert frames[-1]["type"] == "task_postprocess_end"
    assert [o["url"] for o in frames[-1]["message"]] == [o["url"] for o in detail["outputs"]]
    assert statuses(frames)[-4:] == [
        "task_output_full",
        "task_end",
        "task_postprocess_start",
        "task_postprocess_end",
    ]
    # registering again gives the same ending: nothing is consumed by the first follower
    assert follow(service, run["socketaccesstoken"])[-1] == frames[-1]


def test_kill_mid_run_ends_with_task_cancel(service: Service) -> None:
    run = run_krea(service, steps=100, size=256)
    with register(service, run["socketaccesstoken"]) as socket:
        frames = []
        while not frames or not is_progress(frames[-1]):
            frames.append(json.loads(socket.recv(timeout=120)))
        killed = service.post("/v1/Task/Kill", json={"taskid": run["taskid"]}).json()
        assert killed["result"] is True, killed
        frames += read_all(socket)

    assert frames[-1]["type"] == "task_cancel"
    assert "task_postprocess_end" not in statuses(frames)
    progress = [int(f["message"]["stepCurrent"]) for f in frames if is_progress(f)]
    assert progress and progress[-1] < 100
    assert service.detail(run["taskid"])["status"] == "task_cancel"


def test_unknown_token_gets_an_error_frame_and_a_clean_close(service: Service) -> None:
    with register(service, "no-such-token") as socket:
        frames = read_all(socket, timeout=30)
    assert len(frames) == 1
    assert frames[0]["result"] is False
    assert frames[0]["tasktoken"] == "no-such-token"
    assert "no-such-token" in frames[0]["message"] and frames[0]["errors"]


def test_malformed_registration_gets_an_error_frame_and_a_clean_close(service: Service) -> None:
    with connect(socket_url(service), open_timeout=10) as socket:
        socket.send("hello")
        frames = read_all(socket, timeout=30)
    assert [f["result"] for f in frames] == [False]
    assert "JSON" in frames[0]["message"]


def test_two_clients_on_one_task_both_get_every_status(service: Service) -> None:
    run = run_krea(service, steps=30, size=128)
    token = run["socketaccesstoken"]
    with register(service, token) as first, register(service, token) as second:
        first_frames, second_frames = read_all(first), read_all(second)

    assert statuses(first_frames) == STATUS_ORDER
    assert statuses(second_frames) == STATUS_ORDER
    assert first_frames[-1] == second_frames[-1]


def test_a_client_that_never_reads_does_not_stall_the_task(service: Service) -> None:
    # A short run: a client that never reads cannot answer pings either, and uvicorn closes such a
    # socket after about 40 s (ping interval + timeout), which a long task on a crowded machine hits
    run = run_krea(service, steps=30, size=64)
    token = run["socketaccesstoken"]
    # max_queue=1: the client library stops reading from the network once one frame is waiting
    # ping_interval=None: a client that reads nothing cannot hear pongs, so its own keepalive
    # would give up on a slow machine before the task ends
    with register(service, token, max_queue=1, ping_interval=None) as stalled:
        with register(service, token) as reader:
            live = read_all(reader)
        assert service.wait(run["taskid"], timeout=120)["status"] == "task_postprocess_end"
        late = read_all(stalled)

    assert statuses(live) == STATUS_ORDER
    assert statuses(late)[-1] == "task_postprocess_end"
    assert late[-1]["message"] == live[-1]["message"]


def test_failed_task_sends_the_error_frames_before_the_end_events(service: Service) -> None:
    unreachable = "http://127.0.0.1:9/missing.png"  # nothing listens on the discard port
    run = service.run(
        "wiro/flux_kontext_dev_with_2_image",
        prompt="a cat",
        inputImageUrl=unreachable,
        inputImage2Url=unreachable,
        steps="2",
    )
    frames = follow(service, run["socketaccesstoken"])

    kinds = statuses(frames)
    assert kinds[-6:] == [
        "task_error",
        "task_output_full",
        "task_error_full",
        "task_end",
        "task_postprocess_start",
        "task_postprocess_end",
    ]
    error = service.wait(run["taskid"])["debugerror"]
    assert error and frames[-6]["message"] == error == frames[-4]["message"]
    assert frames[-1]["message"] == []


def test_cancel_while_queued_reaches_the_socket(service: Service) -> None:
    """Task/Cancel publishes no event; the socket learns it from the store and sends task_cancel."""
    busy = run_krea(service, steps=100, size=512)  # occupies the single worker thread for a while
    queued = run_krea(service, steps=2)
    with register(service, busy["socketaccesstoken"]) as busy_socket:
        while json.loads(busy_socket.recv(timeout=120))["type"] != "task_start":
            pass
        with register(service, queued["socketaccesstoken"]) as socket:
            assert json.loads(socket.recv(timeout=30))["type"] == "task_info"  # the acknowledgement
            first = json.loads(socket.recv(timeout=30))
            cancelled = service.post("/v1/Task/Cancel", json={"taskid": queued["taskid"]}).json()
            assert cancelled["result"] is True, cancelled
            rest = read_all(socket, timeout=30)
        service.post("/v1/Task/Kill", json={"taskid": busy["taskid"]})  # only to free the worker
        assert read_all(busy_socket)[-1]["type"] in ("task_cancel", "task_postprocess_end")

    assert first["type"] == "task_queue"
    assert [f["type"] for f in rest] == ["task_cancel"]


def test_a_worker_in_another_process_is_followed_through_the_store(
    make_service: Callable[..., Service],
) -> None:
    """API-only server plus a separate `fluxserve worker`: no shared bus, frames come from the store."""
    service = make_service(FLUXSERVE_WORKERS="0")
    worker = subprocess.Popen(
        [sys.executable, "-m", "fluxserve.cli", "worker"],
        env={**service.env(), "FLUXSERVE_WORKERS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = run_krea(service, steps=100, size=256)
        frames = follow(service, run["socketaccesstoken"])
    finally:
        worker.terminate()
        worker.wait(30)

    kinds = statuses(frames)
    assert kinds[0] == "task_queue" and kinds[-1] == "task_postprocess_end"
    assert kinds == [kind for kind in STATUS_ORDER if kind in kinds]  # in order, none repeated
    assert [o["url"] for o in frames[-1]["message"]] == [
        o["url"] for o in service.wait(run["taskid"])["outputs"]
    ]


def test_registering_mid_run_replays_the_missed_statuses_then_goes_live(service: Service) -> None:
    run = run_krea(service, steps=100, size=512)
    while '"stepCurrent"' not in (detail := service.detail(run["taskid"]))["debugoutput"]:
        assert detail["status"] not in ("task_postprocess_end", "task_cancel"), detail["status"]
        time.sleep(0.05)
    seen_before = int(json.loads(detail["debugoutput"])["stepCurrent"])  # Detail's progress line
    frames = follow(service, run["socketaccesstoken"])

    assert statuses(frames) == STATUS_ORDER
    progress = [int(f["message"]["stepCurrent"]) for f in frames if is_progress(f)]
    assert progress[0] >= seen_before  # the replay starts from the latest progress, not step 1
    assert progress[-1] == 100
