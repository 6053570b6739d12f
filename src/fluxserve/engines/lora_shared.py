"""Private-URL LoRAs shared between workers through the object store.

A worker that downloads a LoRA from ``selectedLoraModelPrivateUrl`` also stores it as
``loras/<sha256>.safetensors`` and records the URL as ``loras/urls/<sha256 of the URL>`` (a text
object holding the content hash; the URL itself, which may carry a signature, is never stored).
Another worker asked for the same URL copies the file from the object store instead of
downloading it again, and checks that its bytes still hash to the recorded value.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path

from fluxserve.engines.base import EngineConfig
from fluxserve.storage import Storage, open_storage

log = logging.getLogger(__name__)


class SharedLoras:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @classmethod
    def from_config(cls, config: EngineConfig) -> SharedLoras | None:
        """None for the local data folder: there the worker's own LoRA folder is the only cache."""
        if not config.storage_url.startswith("s3://"):
            return None
        return cls(
            open_storage(config.storage_url, config.data_dir, config.s3_endpoint_url, config.s3_region)
        )

    def find(self, url: str, folder: Path) -> tuple[Path, str] | None:
        """Copy the LoRA another worker downloaded from ``url`` into ``folder``; None if there is none."""
        scratch = folder / "incoming" / uuid.uuid4().hex
        try:
            try:
                digest = self.storage.fetch(_url_key(url), scratch).read_text(encoding="ascii").strip()
                fetched = self.storage.fetch(f"loras/{digest}.safetensors", scratch)
            except (FileNotFoundError, UnicodeDecodeError, ValueError):
                return None
            if _sha256(fetched) != digest:
                log.warning("shared LoRA %s does not match its hash; downloading it again", digest)
                return None
            final = folder / f"{digest}.safetensors"
            os.replace(fetched, final)
        finally:
            _remove_tree(scratch)
        log.info("LoRA %s taken from the shared store %s", digest, self.storage.describe())
        return final, digest

    def publish(self, url: str, path: Path, digest: str) -> None:
        """Make a downloaded LoRA available to the other workers (the file first, then the URL)."""
        key = f"loras/{digest}.safetensors"
        if not self.storage.exists(key):
            self.storage.put_file(key, path)
        self.storage.put(_url_key(url), digest.encode("ascii"))


def _url_key(url: str) -> str:
    return f"loras/urls/{hashlib.sha256(url.encode()).hexdigest()}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
