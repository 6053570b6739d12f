"""Prompt encodings kept across tasks: an LRU of FLUX.1 ``encode_prompt`` results.

Encoding a prompt runs CLIP-L and T5-XXL (on real weights T5 alone is ~4.7 B parameters), once per
task; tasks repeating a prompt (retries, seeds sweeps, batches of one prompt) skip it. The key is
(text encoder identities, prompt, prompt_2, max_sequence_length): the FLUX.1 home shares one pair
of encoders between every FLUX.1 pipeline, and never unloads them, so their ``id`` is stable.

Entries are the tensors ``encode_prompt`` returned, kept on the pipeline's device and only ever
read (pipelines copy them with ``repeat``/``cat`` before use), so a cache hit gives the very same
numbers as a fresh encode. At ``bfloat16`` a FLUX.1 entry is ~4 MB (512 T5 tokens x 4096).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MAX_SEQUENCE_LENGTH = 512
"""FLUX.1's T5 sequence length (diffusers' ``encode_prompt`` default); every encoding uses it."""


@dataclass(frozen=True)
class PromptEncoding:
    prompt_embeds: Any  # (1, sequence, dim)
    pooled_prompt_embeds: Any  # (1, pooled dim)


class PromptCache:
    """Thread-safe LRU of prompt encodings; ``size`` 0 keeps nothing."""

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple, PromptEncoding] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, pipe: Any, prompt: str, prompt_2: str | None = None) -> PromptEncoding:
        """``pipe.encode_prompt`` of ``prompt``, from the cache when it was encoded before."""
        key = (
            id(pipe.text_encoder),
            id(pipe.text_encoder_2),
            prompt,
            prompt_2,
            MAX_SEQUENCE_LENGTH,
        )
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        embeds, pooled, _ = pipe.encode_prompt(
            prompt=prompt,
            prompt_2=prompt_2,
            device=pipe._execution_device,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
        )
        encoding = PromptEncoding(embeds, pooled)
        if self.size:
            with self._lock:
                self._entries[key] = encoding
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return encoding

    def __len__(self) -> int:
        return len(self._entries)
