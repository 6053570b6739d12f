"""Which queued tasks may share one batched pipeline call: the batch key, computed at Run time.

Two tasks of one tool can be denoised together when everything that shapes the denoising loop is
equal: size, steps, guidance, LoRA set and scales, and any other input the tool does not list in
its ``batch_vary`` (the inputs that only change a batch row, such as prompt and seed). The key is a
digest of the tool and of those inputs' values; the store keeps it with the task, and a worker
claims tasks with the same key together. Tools without ``batch_vary`` (Kontext, the partner
tools) get the empty key: never batched.

Pure Python, like the rest of the catalog.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fluxserve.catalog.model import ToolSpec


def batch_key(tool: ToolSpec, values: Mapping[str, Any]) -> str:
    """The task's batch key ('' when the tool is never batched). ``values`` are the validated inputs."""
    if tool.batch_vary is None:
        return ""
    fixed = {name: value for name, value in values.items() if name not in tool.batch_vary}
    text = json.dumps([tool.tool, fixed], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]
