"""FLUXSERVE_WORKER_NICE: the kernel's rule, the mechanism in a plain process, the refusal, and serve's
workers taking it (without waiting for them to import torch)."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fluxserve.worker.priority import AUTOGROUP_SWITCH, permitted
from tests.support.procfs import niceness
from tests.support.service import Service, process_env

AUTOGROUP = AUTOGROUP_SWITCH.exists() and AUTOGROUP_SWITCH.read_text().strip() == "1"


def test_permitted_follows_the_kernel_s_can_nice_rule() -> None:
    assert permitted(5, current=0, rlimit_nice=0, has_cap_sys_nice=False)  # raising: always
    assert permitted(0, current=0, rlimit_nice=0, has_cap_sys_nice=False)
    assert not permitted(-1, current=0, rlimit_nice=0, has_cap_sys_nice=False)
    assert not permitted(-1, current=0, rlimit_nice=20, has_cap_sys_nice=False)  # 20 allows nice 0
    assert permitted(-1, current=0, rlimit_nice=21, has_cap_sys_nice=False)
    assert not permitted(-10, current=0, rlimit_nice=29, has_cap_sys_nice=False)
    assert permitted(-10, current=0, rlimit_nice=30, has_cap_sys_nice=False)
    assert permitted(-20, current=0, rlimit_nice=0, has_cap_sys_nice=True)
    assert not permitted(3, current=5, rlimit_nice=0, has_cap_sys_nice=False)  # back down from 5


APPLY_THEN_REPORT = """
import json, os, threading
from pathlib import Path
from fluxserve.worker.priority import apply
apply(5)
started = threading.Event(); done = threading.Event()
def later():
    started.set(); done.wait()
thread = threading.Thread(target=later); thread.start(); started.wait()
tids = os.listdir("/proc/self/task")
nices = [int(Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16]) for tid in tids]
group = Path("/proc/self/autogroup")
print(json.dumps({"pid": os.getpid(), "sid": os.getsid(0), "threads": len(tids), "nices": nices,
                  "autogroup": group.read_text() if group.exists() else ""}))
done.set()
"""


def test_apply_nices_every_later_thread_and_under_autogroup_leaves_for_its_own_session() -> None:
    result = subprocess.run(
        [sys.executable, "-c", APPLY_THEN_REPORT], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(result.stdout)
    assert report["threads"] == 2 and report["nices"] == [5, 5]
    if AUTOGROUP:  # this process was started as nobody's group leader, so it could setsid
        assert report["sid"] == report["pid"] and os.getsid(0) != report["pid"]
        assert report["autogroup"].strip().endswith("nice 5")
        assert Path("/proc/self/autogroup").read_text() != report["autogroup"]  # ours is untouched
    else:
        assert report["sid"] == os.getsid(0)  # nothing to gain from a session of its own


REFUSED_AUTOGROUP = """
import logging, os
from fluxserve.worker import priority
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
priority._autogroup_enabled = lambda: True
def refuse(nice, attempts=20):
    raise PermissionError(13, "Permission denied", "/proc/self/autogroup")
priority._set_autogroup_nice = refuse
priority.apply(3)
print(os.getpriority(os.PRIO_PROCESS, 0), os.getsid(0) == os.getpid())
"""


def test_a_refused_autogroup_write_is_a_warning_not_a_crash() -> None:
    """A worker that dies at start is restarted forever: where /proc refuses the autogroup write (some
    containers), the worker keeps its thread niceness and says what it could not do."""
    result = subprocess.run(
        [sys.executable, "-c", REFUSED_AUTOGROUP], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["3", "True"]
    assert "could not set the worker session's autogroup niceness" in result.stderr, result.stderr
    assert "worker niceness 3 (in a session of its own, autogroup niceness not set)" in result.stderr


def _without_the_right_to_lower_niceness() -> None:
    """preexec: RLIMIT_NICE 0 and, for root, CAP_SYS_NICE out of the bounding set (so the program
    exec'd next does not get it back)."""
    resource.setrlimit(resource.RLIMIT_NICE, (0, 0))
    if os.geteuid() == 0:
        pr_capbset_drop, cap_sys_nice = 24, 23
        if ctypes.CDLL(None, use_errno=True).prctl(pr_capbset_drop, cap_sys_nice, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_SYS_NICE)")


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_niceness_the_process_may_not_take_stops_it_with_a_clear_error(
    command: str, tmp_path: Path, tiny_weights_dir: Path
) -> None:
    env = process_env(tmp_path, str(tiny_weights_dir), {"FLUXSERVE_WORKER_NICE": "-5"})
    result = subprocess.run(
        [sys.executable, "-m", "fluxserve.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_without_the_right_to_lower_niceness,
    )
    assert result.returncode == 2, result.stderr
    assert "FLUXSERVE_WORKER_NICE=-5" in result.stderr and "CAP_SYS_NICE" in result.stderr, result.stderr
    assert "RLIMIT_NICE of at least 25 (this process has 0)" in result.stderr, result.stderr


def test_an_out_of_range_niceness_is_refused_naming_the_setting(
    tmp_path: Path, tiny_weights_dir: Path
) -> None:
    env = process_env(tmp_path, str(tiny_weights_dir), {"FLUXSERVE_WORKER_NICE": "25"})
    result = subprocess.run(
        [sys.executable, "-m", "fluxserve.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: invalid settings: FLUXSERVE_WORKER_NICE='25': Input should be less than or equal to 19"
    )


def test_serve_s_worker_processes_take_the_niceness_and_the_api_keeps_its_own(
    tmp_path: Path, tiny_weights_dir: Path
) -> None:
    service = Service(
        tmp_path, weights=str(tiny_weights_dir), env_overrides={"FLUXSERVE_WORKER_NICE": "5"}
    ).start()
    try:
        assert service.process is not None
        serve = service.process.pid
        worker = _spawned_worker(serve)
        deadline = time.monotonic() + 30
        while niceness(worker) != 5 and time.monotonic() < deadline:  # it applies it first thing
            time.sleep(0.05)
        assert niceness(worker) == 5
        assert niceness(serve) == 10  # FLUXSERVE_API_NICE on the HTTP thread, as before
        if AUTOGROUP:
            deadline = time.monotonic() + 10
            while os.getsid(worker) != worker and time.monotonic() < deadline:
                time.sleep(0.05)
            assert os.getsid(worker) == worker and os.getsid(serve) == serve
            assert Path(f"/proc/{worker}/autogroup").read_text().strip().endswith("nice 5")
            assert Path(f"/proc/{serve}/autogroup").read_text().strip().endswith("nice 0")
    finally:
        service.stop()


def _spawned_worker(serve: int, timeout: float = 30) -> int:
    """serve's worker process: the child that multiprocessing's spawn started (not its resource tracker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{serve}/task/{serve}/children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                return int(child)
        time.sleep(0.05)
    raise AssertionError("serve started no worker process")


@pytest.mark.parametrize("start", ["group leader", "session leader"])
def test_a_standalone_worker_says_where_its_niceness_counts(
    start: str, tmp_path: Path, tiny_weights_dir: Path
) -> None:
    """Started from a shell, `fluxserve worker` leads its process group and cannot setsid: it warns
    that the value counts in its session only. Under `setsid` or systemd it leads its session and sets
    that session's autogroup niceness itself."""
    env = process_env(tmp_path, str(tiny_weights_dir), {"FLUXSERVE_WORKER_NICE": "4"})
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "fluxserve.cli", "worker"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            **({"process_group": 0} if start == "group leader" else {"start_new_session": True}),
        )
    try:
        deadline = time.monotonic() + 60
        while "worker niceness 4" not in log_path.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log_path.read_text()
            time.sleep(0.05)
        log = log_path.read_text()
        assert "worker niceness 4" in log, log
        assert niceness(worker.pid) == 4
        group = Path(f"/proc/{worker.pid}/autogroup").read_text().strip()
        if not AUTOGROUP:
            assert "no autogroup scheduling on this kernel" in log
        elif start == "group leader":
            assert "cannot start a session of its own" in log and "(inside its session only)" in log
            assert (
                os.getsid(worker.pid) == os.getsid(0)
                and group == Path("/proc/self/autogroup").read_text().strip()
            )
        else:
            assert os.getsid(worker.pid) == worker.pid and group.endswith("nice 4")
    finally:
        worker.kill()
        worker.wait()
