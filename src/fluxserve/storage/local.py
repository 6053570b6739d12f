"""Files on local disk under the data dir, addressed by a relative storage key."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fluxserve.storage.base import StoredObject, check_key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file behind ``key``; refuses keys that would escape the root."""
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> Path:
        """Write atomically (temp file + rename), so a reader never sees half a file."""
        with self._atomic(key) as handle:
            handle.write(data)
        return self.path(key)

    def put_file(self, key: str, source: Path) -> None:
        with self._atomic(key) as handle, open(source, "rb") as reader:
            shutil.copyfileobj(reader, handle, 2**20)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def fetch(self, key: str, scratch: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no stored file {key!r}")
        return path

    def open(self, key: str) -> StoredObject | None:
        path = self.path(key)
        return StoredObject(size=path.stat().st_size, path=path) if path.is_file() else None

    def describe(self) -> str:
        return f"folder {self.root}"

    def _atomic(self, key: str) -> _AtomicFile:
        return _AtomicFile(self.path(key))


class _AtomicFile:
    """A temp file beside ``path`` that replaces ``path`` only when the block ends without error."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self):
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".tmp-")
        self._handle = os.fdopen(fd, "wb")
        return self._handle

    def __exit__(self, exc_type, exc, tb) -> None:
        self._handle.close()
        if exc_type is None:
            os.replace(self._tmp, self._path)
        else:
            Path(self._tmp).unlink(missing_ok=True)
