"""The seeds' bash recipes (copied verbatim from the API documents into tests/seeds/)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
HOSTED_BASE = "https://api.wiro.ai"


def seed_text(tool: str) -> str:
    return (SEEDS / f"{tool.replace('/', '__')}.txt").read_text(encoding="utf-8")


def _code_block(text: str, heading: str) -> str:
    match = re.search(re.escape(f"## {heading}") + r" ```bash (.*?)```", text, re.S)
    assert match, f"no bash block under {heading!r}"
    return match.group(1).strip()


def header_recipe(tool: str, api_key: str, api_secret: str) -> str:
    """ "Integration Header Prepare", verbatim but for the two placeholders a user fills in."""
    block = _code_block(seed_text(tool), "Integration Header Prepare")
    block = block.replace("{{useSelectedProjectAPIKey}}", api_key).replace('"XXXXXXXXX"', f'"{api_secret}"')
    # The flattened document lost its newlines: the first comment would swallow the whole line.
    return re.sub(r"# [^;]*?(?=export )", "", block)


def curl_command(tool: str, heading: str, base_url: str) -> str:
    """A curl example with the hosted base URL swapped for ``base_url`` — the only change a client makes.

    Two of the seeds' examples put a JSON body with apostrophes (``Iron Man's``, ``it's``) inside a
    single-quoted bash string, which bash cannot parse; those apostrophes are escaped the way a
    shell user must (``'\\''``). Nothing else changes.
    """
    command = _code_block(seed_text(tool), heading).replace(HOSTED_BASE, base_url)
    start = command.index("-d '") + len("-d '")
    end = command.rindex("'")
    payload = command[start:end].replace("'", "'\\''")
    return command[:start] + payload + command[end:]


RUN = "Run Command - Make HTTP Post Request"


def run_seed_curl(service, tool: str, heading: str = RUN, replace: tuple[str, str] | None = None) -> dict:
    """The seed's header recipe and one of its curl examples, run in bash against ``service``.

    ``replace`` swaps the example's identifier (e.g. task id "2221") for one of ours.
    """
    command = curl_command(tool, heading, service.base_url)
    if replace:
        command = command.replace(*replace)
    script = header_recipe(tool, service.api_key, service.api_secret) + " " + command
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)
