"""What Linux's /proc says about a test's processes."""

from __future__ import annotations

from pathlib import Path


def niceness(pid: int) -> int:
    """The niceness of ``pid``'s main thread (field 19 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])
