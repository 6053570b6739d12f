"""The storage interface, the object handed to downloads, and the backend chooser.

Keys are relative, ``/``-separated paths made by fluxserve itself (``uploads/<accesskey>/<name>``,
``outputs/<task uuid>/<name>``, ``loras/<sha256>.safetensors``); a key with ``..`` segments or a
leading ``/`` is refused by every backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    """One stored file, ready to be sent: a local ``path`` (sendable as is) or a stream of ``chunks``."""

    size: int
    path: Path | None = None
    chunks: Iterator[bytes] | None = None


class Storage(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; a reader never sees half an object."""
        ...

    def put_file(self, key: str, source: Path) -> None:
        """Store the file at ``source`` under ``key`` (streamed, for large files such as LoRAs)."""
        ...

    def exists(self, key: str) -> bool: ...

    def fetch(self, key: str, scratch: Path) -> Path:
        """A local file holding the object: the file itself for the local folder, else a download
        into the folder ``scratch``. Raises FileNotFoundError when there is no such object."""
        ...

    def open(self, key: str) -> StoredObject | None:
        """The object for sending over HTTP, or None when there is no such object."""
        ...

    def describe(self) -> str:
        """Where files go, for logs and ``fluxserve workers`` (never contains credentials)."""
        ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid storage key {key!r}: must be a relative path without '..' segments")
    return key


def open_storage(url: str, local_root: Path, s3_endpoint_url: str = "", s3_region: str = "") -> Storage:
    """The backend named by ``url``: ``""`` or ``file://`` → the folder ``local_root`` (or the
    path after ``file://``); ``s3://bucket/prefix`` → that bucket, through boto3 (credentials from
    boto3's usual chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles)."""
    if not url:
        from fluxserve.storage.local import LocalStorage

        return LocalStorage(local_root)
    if url.startswith("file://"):
        from fluxserve.storage.local import LocalStorage

        return LocalStorage(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        from fluxserve.storage.s3 import S3Storage

        return S3Storage.from_url(url, endpoint_url=s3_endpoint_url, region=s3_region)
    raise ValueError(
        f"FLUXSERVE_STORAGE_URL: unsupported storage URL {url!r}; "
        "use s3://bucket/prefix for an S3-compatible store, or leave it empty for the local data folder"
    )
