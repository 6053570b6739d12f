"""A worker process's CPU priority (``FLUXSERVE_WORKER_NICE``), ranked against the whole machine.

Linux niceness is per thread, and with the kernel's autogroup scheduling on (the default of most
distributions) it only ranks a thread among the processes of its own session: the kernel shares CPU
between sessions first, each session weighing the same whatever its processes' niceness. A worker
started from a shell would then stay level with, say, a load generator started from another shell,
whatever its niceness. So a worker given a niceness also leaves ``serve``'s session for one of its
own (``setsid``) and gives that session's autogroup the same niceness.

Lowering niceness below 0 is what the kernel's ``can_nice`` allows: ``CAP_SYS_NICE``, or an
``RLIMIT_NICE`` of at least ``20 - nice``. ``check`` applies that rule before any worker starts, so a
refused value stops ``serve`` with a clear error instead of a worker dying and restarting forever.

Inside a cgroup with its own CPU controller (a container, a systemd unit) CPU is shared by cgroup
first and autogroups do not apply; there the cgroup's CPU weight is the knob (README, Processes).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import time
from pathlib import Path

log = logging.getLogger(__name__)

CAP_SYS_NICE = 23
AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")


class PriorityError(Exception):
    """The configured niceness cannot be applied by this process."""


def permitted(nice: int, current: int, rlimit_nice: int, has_cap_sys_nice: bool) -> bool:
    """The kernel's rule (``can_nice``): raising niceness is always allowed; lowering it needs
    CAP_SYS_NICE or an RLIMIT_NICE of at least ``20 - nice``."""
    return nice >= current or has_cap_sys_nice or 20 - nice <= rlimit_nice


def check(nice: int) -> None:
    """Raise PriorityError, naming what would allow it, if this process may not take ``nice``."""
    if nice == 0 or not hasattr(os, "setpriority"):
        return
    current = os.getpriority(os.PRIO_PROCESS, 0)
    rlimit = resource.getrlimit(resource.RLIMIT_NICE)[0] if hasattr(resource, "RLIMIT_NICE") else 0
    limit = 40 if rlimit == resource.RLIM_INFINITY else rlimit
    if not permitted(nice, current, limit, _has_cap_sys_nice()):
        raise PriorityError(
            f"FLUXSERVE_WORKER_NICE={nice}: lowering niceness below {current} needs the CAP_SYS_NICE "
            f"capability or an RLIMIT_NICE of at least {20 - nice} (this process has {limit}). Run as "
            "root, grant the capability (systemd: AmbientCapabilities=CAP_SYS_NICE), raise the limit "
            "(limits.conf 'nice', systemd LimitNICE=), or use a value from 0 to 19."
        )


def apply(nice: int) -> None:
    """Give this process (its calling thread and every thread it starts later) niceness ``nice`` and,
    under autogroup scheduling, a session of its own at the same niceness. Call it first thing in a
    worker process, before any other thread exists. 0 leaves everything as it is."""
    if nice == 0 or not hasattr(os, "setpriority"):
        return
    check(nice)
    os.setpriority(os.PRIO_PROCESS, 0, nice)  # on Linux: this thread; later threads inherit it
    where = _own_autogroup(nice)
    log.info("worker niceness %d (%s)", nice, where)


def _own_autogroup(nice: int) -> str:
    if not _autogroup_enabled():
        return "no autogroup scheduling on this kernel"
    if os.getsid(0) != os.getpid():
        try:
            os.setsid()
        except PermissionError:  # a process group leader (a command started from a shell)
            log.warning(
                "FLUXSERVE_WORKER_NICE ranks this worker only among the processes of its session: it "
                "leads a process group, so it cannot start a session of its own. Start it with "
                "`setsid fluxserve worker` (or under systemd) for the value to count machine-wide."
            )
            return "inside its session only"
    try:
        _set_autogroup_nice(nice)
    except OSError as exc:  # e.g. a read-only /proc in a container
        log.warning("could not set the worker session's autogroup niceness (%s); threads keep theirs", exc)
        return "in a session of its own, autogroup niceness not set"
    return "in a session of its own, whose autogroup has the same niceness"


def _set_autogroup_nice(nice: int, attempts: int = 20) -> None:
    """Write this session's autogroup niceness. Without CAP_SYS_ADMIN the kernel takes one such write
    every 100 ms machine-wide (EAGAIN otherwise): workers starting together take turns."""
    for attempt in range(attempts):
        try:
            Path("/proc/self/autogroup").write_text(str(nice))
            return
        except OSError as exc:
            if exc.errno != errno.EAGAIN or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _autogroup_enabled() -> bool:
    with contextlib.suppress(OSError, ValueError):
        return int(AUTOGROUP_SWITCH.read_text()) == 1 and Path("/proc/self/autogroup").exists()
    return False


def _has_cap_sys_nice() -> bool:
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        effective = next(line for line in status if line.startswith("CapEff:")).split()[1]
        return bool(int(effective, 16) >> CAP_SYS_NICE & 1)
    return os.geteuid() == 0 if hasattr(os, "geteuid") else False
