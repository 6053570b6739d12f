"""Debian's real Chromium, driven by Playwright for Python, and where its screenshots go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def chromium_path() -> str:
    """The system Chromium (`apt-get install chromium`); Playwright's own download is never used."""
    for candidate in (os.environ.get("FLUXSERVE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError("Chromium is not installed: apt-get install chromium (.ci/run does this)")


def artifacts_dir() -> Path:
    """Screenshots of the playground tests: tmp/artifacts/playground (gitignored)."""
    folder = Path(os.environ.get("FLUXSERVE_ARTIFACTS_DIR", REPO_ROOT / "tmp" / "artifacts")) / "playground"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
