"""The BlobStore contract (core/storage/base.py), one suite for every store (see conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from modelmanager.core.storage import BlobNotFound, BlobStore, capacity_of
from modelmanager.errors import ModelManagerError

#: Every byte value, a few times over, so no store may treat the data as text.
BINARY = bytes(range(256)) * 5


def test_put_returns_the_size_and_get_returns_the_bytes(store: BlobStore) -> None:
    assert store.put("a/b/c.bin", BINARY) == len(BINARY)
    assert store.get("a/b/c.bin") == BINARY
    assert store.size("a/b/c.bin") == len(BINARY)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_put_takes_any_buffer_and_a_sequence_of_parts(store: BlobStore, kind: type) -> None:
    assert store.put("one", kind(b"12345")) == 5
    assert store.put("parts", [kind(b"12"), kind(b""), kind(b"345")]) == 5
    assert store.get("one") == store.get("parts") == b"12345"


def test_an_empty_blob_is_a_blob(store: BlobStore) -> None:
    assert store.put("empty", b"") == 0
    assert store.size("empty") == 0
    assert store.get("empty") == b""
    assert list(store.list()) == [("empty", 0)]


def test_put_replaces_and_exclusive_put_never_does(store: BlobStore) -> None:
    store.put("k", b"first, longer")
    store.put("k", b"second")
    assert store.get("k") == b"second"
    store.put("m.json", b"mine", exclusive=True)
    with pytest.raises(FileExistsError):
        store.put("m.json", b"theirs", exclusive=True)
    assert store.get("m.json") == b"mine"
    assert sorted(store.list()) == [("k", 6), ("m.json", 4)]


def test_put_without_sync_is_readable_at_once_and_durable_after_flush(store: BlobStore) -> None:
    for i in range(3):
        store.put(f"c/{i}", bytes([i]) * 10, sync=False)
    assert store.get("c/1") == b"\x01" * 10
    store.flush()
    store.flush()  # nothing pending: still fine
    assert sorted(store.list("c")) == [("c/0", 10), ("c/1", 10), ("c/2", 10)]


def test_range_reads(store: BlobStore) -> None:
    store.put("k", b"0123456789")
    assert store.get_range("k", 0, 4) == b"0123"
    assert store.get_range("k", 3, 2) == b"34"
    assert store.get_range("k", 8, 10) == b"89"  # fewer at the end
    assert store.get_range("k", 3, -1) == b"3456789"  # -1: to the end
    assert store.get_range("k", 10, 5) == b""
    assert store.get_range("k", 0, 0) == b""


def test_a_large_blob_round_trips_and_reads_in_ranges(store: BlobStore) -> None:
    big = BINARY * 1000 + b"tail"  # over a MiB, not a round size
    store.put("big", big)
    assert store.size("big") == len(big)
    assert store.get("big") == big
    assert store.get_range("big", 700_001, 65_536) == big[700_001 : 700_001 + 65_536]


def test_missing_keys(store: BlobStore) -> None:
    assert store.size("nope") is None
    assert store.size("no/such/folder/key") is None
    for read in (lambda: store.get("nope"), lambda: store.get_range("nope", 0, 1)):
        with pytest.raises(BlobNotFound) as info:
            read()
        assert isinstance(info.value, ModelManagerError)
        assert "nope" in str(info.value)
    store.delete("nope")  # deleting what is not there is no error
    assert list(store.list("nope")) == []


def test_list_is_recursive_and_a_prefix_is_a_folder(store: BlobStore) -> None:
    for key, data in [("a/x", b"1"), ("a/b/y", b"22"), ("a/b/c/z", b"333"), ("ab/w", b"4"),
                      ("top", b"55555")]:  # fmt: skip
        store.put(key, data)
    assert sorted(store.list("a")) == [("a/b/c/z", 3), ("a/b/y", 2), ("a/x", 1)]
    assert sorted(store.list("a/b")) == [("a/b/c/z", 3), ("a/b/y", 2)]
    assert sorted(store.list()) == sorted(
        [("a/x", 1), ("a/b/y", 2), ("a/b/c/z", 3), ("ab/w", 1), ("top", 5)]
    )
    assert list(store.list("missing")) == []


def test_delete_removes_from_every_view(store: BlobStore) -> None:
    store.put("d/k", b"x")
    store.put("d/other", b"y")
    store.delete("d/k")
    store.delete("d/k")
    assert store.size("d/k") is None
    with pytest.raises(BlobNotFound):
        store.get("d/k")
    assert list(store.list("d")) == [("d/other", 1)]


def test_keys_as_the_repository_writes_them(store: BlobStore) -> None:
    keys = [
        "config.json",
        "models/org~model.v2/versions/00000001.json",
        "models/org~model.v2/labels/prod.json",
        "chunks/ab/" + "ab" * 32,
        "fragments/4+2/cd/" + "cd" * 32 + ".5",
        "a name with spaces/ünïcödé-名前.bin",
    ]
    for n, key in enumerate(keys):
        store.put(key, bytes([n]) * (n + 1))
    assert sorted(store.list()) == sorted((k, n + 1) for n, k in enumerate(keys))
    for n, key in enumerate(keys):
        assert store.get(key) == bytes([n]) * (n + 1)


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "../up", "a//b", "a\\b", "./a", "a/.",
                                 "a/", "nul\0byte"])  # fmt: skip
def test_unsafe_keys_are_refused_before_any_io(store: BlobStore, key: str) -> None:
    for call in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.get_range(key, 0, 1),
        lambda: store.size(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError, match="unsafe"):
            call()
    assert list(store.list()) == []


def _failing_parts() -> Iterator[bytes]:
    yield b"the first half arrived"
    raise OSError("the source went away half way")


def test_a_put_that_fails_half_way_leaves_the_old_blob_and_nothing_else(store: BlobStore) -> None:
    store.put("k", b"old")

    class Parts(list[bytes]):  # a sequence whose second part cannot be read
        def __iter__(self) -> Iterator[bytes]:
            return _failing_parts()

    with pytest.raises(OSError, match="half way"):
        store.put("k", Parts([b"", b""]))
    with pytest.raises(OSError, match="half way"):
        store.put("new", Parts([b"", b""]))
    assert store.get("k") == b"old"
    assert store.size("new") is None
    assert list(store.list()) == [("k", 3)]


def test_readers_see_a_whole_blob_while_it_is_replaced(store: BlobStore) -> None:
    versions = [bytes([n]) * (1000 + 997 * n) for n in range(4)]
    store.put("k", versions[0])
    seen: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(store.get("k"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _round in range(5):
            for v in versions:
                store.put("k", v)
    finally:
        done.set()
        reader.join()
    assert seen <= set(versions)  # never a mix, never a partial blob


def test_capacity_is_unknown_or_sane(store: BlobStore) -> None:
    space = capacity_of(store)
    if space is not None:
        assert space.total > 0
        assert 0 <= space.free <= space.total
        assert capacity_of(store) is not None
        assert capacity_of(store).volume == space.volume  # type: ignore[union-attr]
