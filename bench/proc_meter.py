"""CPU time and involuntary context switches of one process, from /proc (Linux).

``bench/load.py`` reads them for the worker process around each round: a worker that needs more CPU
for the same tasks is running slower per instruction (caches, memory, the host), one that is
switched out involuntarily more often is losing its core to other processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Reading:
    cpu_seconds: float
    involuntary_switches: int

    def __sub__(self, earlier: Reading) -> Reading:
        return Reading(
            self.cpu_seconds - earlier.cpu_seconds, self.involuntary_switches - earlier.involuntary_switches
        )

    def __add__(self, other: Reading) -> Reading:
        return Reading(
            self.cpu_seconds + other.cpu_seconds, self.involuntary_switches + other.involuntary_switches
        )


def read(pid: int) -> Reading:
    """User + system CPU seconds and involuntary context switches of ``pid`` (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; utime, stime are fields 14, 15
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("nonvoluntary_ctxt_switches:"):
                switches += int(line.split()[1])
    return Reading(cpu, switches)


def largest_child(pid: int) -> int:
    """The child of ``pid`` with the most resident memory: serve's worker process (torch and the
    model), not multiprocessing's small resource tracker."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()

    def resident(child: str) -> int:
        return int(Path(f"/proc/{child}/statm").read_text().split()[1])

    return int(max(children, key=resident))
