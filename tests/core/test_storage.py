"""LocalBlobStore: the BlobStore contract (atomic puts, exclusive create, listing, delete)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmanager.core.storage import BlobNotFound, LocalBlobStore
from modelmanager.core.storage.atomic import TEMP_PREFIX


def test_put_get_size_list_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    assert store.put("a/b/c.bin", [b"12", b"345"]) == 5
    assert store.get("a/b/c.bin") == b"12345"
    assert store.size("a/b/c.bin") == 5
    assert store.size("a/b/nope") is None
    store.put("a/d.bin", b"x")
    assert sorted(store.list("a")) == [("a/b/c.bin", 5), ("a/d.bin", 1)]
    store.delete("a/d.bin")
    store.delete("a/d.bin")  # deleting twice is fine
    assert list(store.list("a")) == [("a/b/c.bin", 5)]
    with pytest.raises(BlobNotFound):
        store.get("a/d.bin")


def test_exclusive_put_never_replaces(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("m.json", b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        store.put("m.json", b"second", exclusive=True)
    assert store.get("m.json") == b"first"
    assert store.temp_files() == []


def test_temp_files_are_not_listed_but_are_found(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("x/real", b"1")
    (tmp_path / "x" / f"{TEMP_PREFIX}abc-real").write_bytes(b"partial")
    assert list(store.list("x")) == [("x/real", 1)]
    assert [p.name for p in store.temp_files()] == [f"{TEMP_PREFIX}abc-real"]


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a\\b", "./a", "a/."])
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        LocalBlobStore(tmp_path).put(key, b"x")


def test_range_reads(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("k", b"0123456789")
    assert store.get_range("k", 0, 4) == b"0123"
    assert store.get_range("k", 8, 10) == b"89"
    assert store.get_range("k", 3, -1) == b"3456789"
    with pytest.raises(BlobNotFound):
        store.get_range("missing", 0, 1)


def test_a_listing_gives_a_folders_files_then_its_subfolders_and_follows_no_folder_link(
    tmp_path: Path,
) -> None:
    """The order os.walk gave (files in name order, then each subfolder in name order), which
    the faster scandir walk keeps; a link to a folder outside is not followed, and its files
    are not listed as blobs."""
    store = LocalBlobStore(tmp_path / "s")
    for key in ("m/b/2", "m/a/1", "m/z", "m/c", "m/b/1"):
        store.put(key, b"xy")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    (tmp_path / "s" / "m" / "link").symlink_to(outside, target_is_directory=True)
    (tmp_path / "s" / "m" / "a" / f"{TEMP_PREFIX}partial").write_bytes(b"p")
    assert list(store.list("m")) == [("m/c", 2), ("m/z", 2), ("m/a/1", 2), ("m/b/1", 2),
                                     ("m/b/2", 2)]  # fmt: skip
    assert list(store.list()) == list(store.list("m"))
    assert list(store.list("m/b")) == [("m/b/1", 2), ("m/b/2", 2)]
