"""LoRA files: private-URL downloads cached by content hash, the safetensors-only check, and the
check that a LoRA's keys and shapes fit the FLUX transformer before it touches the model.

Private URLs (``selectedLoraModelPrivateUrl``) are fetched once through :mod:`fluxserve.net.safe_fetch`
(SSRF guard, size and time caps, streamed to disk), checked to be safetensors (never pickle), and
stored as ``<data_dir>/loras/<sha256>.safetensors``; ``urls.json`` beside them remembers which URL
gave which hash, so a URL is downloaded once, and two URLs with the same bytes share one file.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxserve.engines.base import EngineConfig
from fluxserve.engines.lora_shared import SharedLoras
from fluxserve.errors import TaskFailure

log = logging.getLogger(__name__)

PRIVATE_URL_FIELD = "selectedLoraModelPrivateUrl"
_MAX_HEADER = 100 * 2**20


@dataclass(frozen=True)
class CheckedLora:
    """A LoRA ready for the transformer: diffusers-format state dict (``transformer.`` keys only)."""

    state_dict: dict[str, Any]
    network_alphas: dict[str, Any] | None
    dropped_text_encoder_keys: int


def check_safetensors(path: Path, what: str) -> None:
    """Raise TaskFailure unless ``path`` is a well-formed safetensors file (header and sizes)."""
    refuse = (
        f"{what}: the file is not a .safetensors file. Only safetensors LoRAs are accepted "
        "(pickled .ckpt/.pt/.bin files are refused because loading them can run code)."
    )
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise TaskFailure(refuse)
        (length,) = struct.unpack("<Q", head)
        if length < 2 or length > min(_MAX_HEADER, size - 8):
            raise TaskFailure(refuse)
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, ValueError):
            raise TaskFailure(refuse) from None
    if not isinstance(header, dict):
        raise TaskFailure(refuse)
    ends = [entry.get("data_offsets", [0, 0])[1] for key, entry in header.items() if key != "__metadata__"]
    if not ends or 8 + length + max(ends) != size:
        raise TaskFailure(f"{what}: the safetensors file is truncated or holds no tensors.")


class PrivateLoraCache:
    """Downloads private-URL LoRAs once and keeps them by content hash under ``<data_dir>/loras``."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.folder = config.data_dir / "loras"
        self._index_path = self.folder / "urls.json"
        self._lock = threading.Lock()
        self.shared = SharedLoras.from_config(config)

    def get(self, url: str, should_stop: Callable[[], bool] | None = None) -> tuple[Path, str]:
        """The local file and sha256 of the LoRA at ``url``: from this worker's folder, else from
        the shared object store (another worker downloaded it), else downloaded (and shared).

        ``should_stop`` is the task's kill flag: the download asks it as bytes arrive and stops
        with TaskKilled, so a Kill reaches a task still fetching its LoRA.
        """
        with self._lock:
            index = self._read_index()
            known = index.get(url)
            if known and (self.folder / f"{known}.safetensors").is_file():
                return self.folder / f"{known}.safetensors", known
            self.folder.mkdir(parents=True, exist_ok=True)
            found = self.shared.find(url, self.folder) if self.shared else None
            if found:
                path, digest = found
            else:
                path, digest = self._download(url, should_stop)
                if self.shared:
                    self.shared.publish(url, path, digest)
            index[url] = digest
            self._write_index(index)
            return path, digest

    def _download(self, url: str, should_stop: Callable[[], bool] | None) -> tuple[Path, str]:
        from fluxserve.net.safe_fetch import FetchPolicy, fetch_to_file

        policy = FetchPolicy(
            allow_private=self.config.allow_private_urls,
            max_bytes=self.config.max_lora_bytes,
            timeout_s=self.config.lora_fetch_timeout_s,
        )
        incoming = self.folder / "incoming" / f"{uuid.uuid4().hex}.part"
        try:
            fetched = fetch_to_file(url, incoming, policy, what=PRIVATE_URL_FIELD, should_stop=should_stop)
            check_safetensors(fetched.path, PRIVATE_URL_FIELD)
            final = self.folder / f"{fetched.sha256}.safetensors"
            os.replace(fetched.path, final)
        finally:
            if incoming.exists():
                incoming.unlink()
        log.info("cached LoRA from %s as %s (%d bytes)", url, final.name, fetched.size)
        return final, fetched.sha256

    def _read_index(self) -> dict[str, str]:
        try:
            data = json.loads(self._index_path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_index(self, index: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._index_path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self._index_path)


def load_checked_lora(path: Path, transformer: Any, what: str) -> CheckedLora:
    """Read a LoRA file (any format diffusers converts: PEFT, kohya, xlabs, BFL) and check that every
    matrix fits a linear layer of ``transformer``; raise TaskFailure naming the mismatches otherwise.

    Text-encoder parts are dropped: the text encoders are shared by every FLUX.1 tool, so a LoRA may
    not change them (the transformer part carries nearly all of a FLUX LoRA's effect).
    """
    from diffusers import FluxPipeline

    check_safetensors(path, what)
    try:
        state, alphas = FluxPipeline.lora_state_dict(str(path), return_alphas=True)
    except Exception as exc:
        raise TaskFailure(
            f"{what}: the file is not a FLUX LoRA diffusers can read ({_first_line(exc)})."
        ) from exc
    transformer_keys = {k: v for k, v in state.items() if k.startswith("transformer.")}
    dropped = sum(1 for k in state if k.startswith(("text_encoder.", "text_encoder_2.")))
    strange = [
        k
        for k in state
        if k not in transformer_keys and not k.startswith(("text_encoder.", "text_encoder_2."))
    ]
    if strange:
        raise TaskFailure(f"{what}: the file has keys that belong to no FLUX.1 module: {_few(strange)}.")
    problems = _shape_problems(transformer_keys, transformer)
    if problems:
        raise TaskFailure(
            f"{what}: this LoRA does not fit the FLUX.1-dev transformer ({len(problems)} mismatches, e.g. "
            f"{_few(problems)}). Use a LoRA trained for FLUX.1-dev."
        )
    if alphas:
        alphas = {k: v for k, v in alphas.items() if k.startswith("transformer.")} or None
    return CheckedLora(transformer_keys, alphas, dropped)


_SUFFIXES = {".lora_A.weight": "in", ".lora_B.weight": "out", ".lora_A.bias": None, ".lora_B.bias": None}


def _shape_problems(state: dict[str, Any], transformer: Any) -> list[str]:
    import torch

    if not state:
        return ["it contains no LoRA weights for the transformer"]
    modules = dict(transformer.named_modules())
    problems: list[str] = []
    ranks: dict[str, tuple[int, int]] = {}  # module -> (rank of A, rank of B)
    for key, tensor in state.items():
        name = key.removeprefix("transformer.")
        suffix = next((item for item in _SUFFIXES if name.endswith(item)), None)
        if suffix is None:
            problems.append(f"{name}: not a LoRA matrix")
            continue
        axis, module_name = _SUFFIXES[suffix], name[: -len(suffix)]
        module = modules.get(module_name)
        module = getattr(module, "base_layer", module)  # already wrapped by an earlier adapter
        if not isinstance(module, torch.nn.Linear):
            problems.append(f"{module_name}: no such linear layer")
        elif axis and tensor.ndim != 2:
            problems.append(f"{name}: shape {tuple(tensor.shape)} is not a matrix")
        elif axis == "in" and tensor.shape[1] != module.in_features:
            problems.append(f"{name}: shape {tuple(tensor.shape)}, layer takes {module.in_features} inputs")
        elif axis == "out" and tensor.shape[0] != module.out_features:
            problems.append(f"{name}: shape {tuple(tensor.shape)}, layer gives {module.out_features} outputs")
        elif axis:
            rank_a, rank_b = ranks.get(module_name, (-1, -1))
            ranks[module_name] = (tensor.shape[0], rank_b) if axis == "in" else (rank_a, tensor.shape[1])
    problems += [
        f"{name}: lora_A rank {a} != lora_B rank {b}" for name, (a, b) in ranks.items() if -1 < a != b > -1
    ]
    return problems


def _few(items: list[str], limit: int = 3) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
