"""A Run request's raw fields -> the tool's validated values: the one place a request is checked.

Engines receive exactly these values (``EngineJob.params``) and trust them: every declared input
coerced and range-checked with its default filled in, plus, for the LoRA tool, each selected LoRA's
scale under its setting id (:func:`fluxserve.catalog.lora.apply_lora_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluxserve.catalog.coerce import ValidatedInputs, validate_inputs
from fluxserve.catalog.lora import apply_lora_rules
from fluxserve.catalog.model import ToolSpec


def validate_request(
    tool: ToolSpec, raw: Mapping[str, Any], uploaded: frozenset[str] = frozenset()
) -> ValidatedInputs:
    """Coerce and check ``raw`` for ``tool``; ``uploaded`` names the file parts sent with it.

    Raises :class:`fluxserve.errors.ValidationError` with one entry per bad field.
    """
    validated = validate_inputs(tool, raw, uploaded)
    return apply_lora_rules(tool, raw, validated)
