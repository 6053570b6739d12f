"""LocalStorage: keys map inside the root, writes are atomic, escaping keys are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxserve.storage.local import LocalStorage


def test_put_writes_under_the_root_and_creates_folders(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files")
    path = storage.put("outputs/abc/0.png", b"\x89PNG")
    assert path == (tmp_path / "files" / "outputs" / "abc" / "0.png").resolve()
    assert path.read_bytes() == b"\x89PNG"
    assert storage.exists("outputs/abc/0.png")
    assert not storage.exists("outputs/abc/1.png")


def test_put_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("a/b.bin", b"one")
    storage.put("a/b.bin", b"two")
    assert storage.path("a/b.bin").read_bytes() == b"two"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.bin"]


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", "."])
def test_keys_that_escape_the_root_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.path(key)
    with pytest.raises(ValueError):
        storage.put(key, b"x")
    assert not (tmp_path / "outside").exists()


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(TypeError):
        storage.put("x/y.bin", object())  # type: ignore[arg-type]
    assert list((tmp_path / "x").iterdir()) == []
