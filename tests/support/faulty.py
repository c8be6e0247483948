"""FaultyBlobStore: any BlobStore with faults injected at its interface, for tests only.

Faults are rules added by chained calls; each rule matches by operation, key and call number
and may fire a limited number of times::

    store = FaultyBlobStore(LocalBlobStore(root))
    store.fail(errno.EIO, op="get", key=chunk_key(cid), times=1)   # one read error
    store.flip_bits(key=lambda k: k.startswith("chunks/"))          # bit rot on every read
    store.offline_after(10)                                         # unplugged after 10 calls
    store.limit_space(256 * 1024)                                   # a small disk that fills

:class:`FaultyFolders` is a StoreFactory for ``init_repository(..., blob_stores=...)``: it wraps
every folder's store once and hands out the same wrapper again when the repository reopens its
layout, so faults set on a device stay set.
"""

from __future__ import annotations

import builtins
import errno
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from modelmanager.core.ids import BytesLike
from modelmanager.core.storage import (
    BlobStore,
    Capacity,
    FolderStore,
    LocalBlobStore,
    capacity_of,
)
from modelmanager.core.storage.atomic import as_parts

OPS = ("put", "get", "get_range", "read_into", "read_resident", "size", "list", "delete",
       "flush", "capacity")  # fmt: skip
READS = ("get", "get_range", "read_into", "read_resident")
KeyMatch = str | Callable[[str], bool] | None


def _key_matcher(key: KeyMatch) -> Callable[[str], bool]:
    """A key predicate: None matches all, a string matches itself and the keys under it."""
    if key is None:
        return lambda _k: True
    if isinstance(key, str):
        prefix = key.rstrip("/") + "/"
        return lambda k: k == key or k.startswith(prefix)
    return key


@dataclass
class _Rule:
    kind: str  # fail | flip | short | delay | block
    ops: frozenset[str]
    key: Callable[[str], bool]
    calls: frozenset[int] | None = None  # call numbers (1-based, over every op) it fires on
    times: int | None = None  # how many more times it fires; None: for ever
    errno: int = errno.EIO
    at: int = -1  # flip: the byte of the returned data that gets a bit flipped
    keep: float = 0.5  # short: the share of the data returned
    seconds: float = 0.0  # delay
    gate: threading.Event | None = None  # block: wait until set

    def matches(self, op: str, key: str, call: int) -> bool:
        if op not in self.ops or not self.key(key) or self.times == 0:
            return False
        return self.calls is None or call in self.calls


class FaultyBlobStore:
    """Passes every call to ``inner`` and injects the faults its rules say, recording both."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.calls: builtins.list[tuple[str, str]] = []  # (op, key) of every call, in order
        self.fired: builtins.list[tuple[str, str, str]] = []  # (fault, op, key) injected
        self._rules: builtins.list[_Rule] = []
        self._offline_after: int | None = None
        self._offline_errno = errno.EIO
        self._space: int | None = None
        self._lock = threading.Lock()
        self._filling = threading.Lock()

    # -- configuring faults ---------------------------------------------------------------

    def _add(
        self, kind: str, op: str | Iterable[str] | None, key: KeyMatch,
        call: int | Iterable[int] | None, times: int | None, **how: Any,
    ) -> FaultyBlobStore:  # fmt: skip
        ops = frozenset(OPS if op is None else [op] if isinstance(op, str) else op)
        unknown = ops - set(OPS)
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}")
        calls = None if call is None else frozenset([call] if isinstance(call, int) else call)
        with self._lock:
            self._rules.append(_Rule(kind, ops, _key_matcher(key), calls, times, **how))
        return self

    def fail(
        self, err: int = errno.EIO, *, op: str | Iterable[str] | None = None, key: KeyMatch = None,
        call: int | Iterable[int] | None = None, times: int | None = None,
    ) -> FaultyBlobStore:  # fmt: skip
        """Raise OSError(``err``) on the matching calls (``call``: their numbers, from 1)."""
        return self._add("fail", op, key, call, times, errno=err)

    def offline_after(self, n: int, err: int = errno.EIO) -> FaultyBlobStore:
        """Let ``n`` more calls through, then fail every call with OSError(``err``)."""
        with self._lock:
            self._offline_after = len(self.calls) + n
            self._offline_errno = err
        return self

    def online(self) -> FaultyBlobStore:
        """Plug the store back in (undo :meth:`offline_after`)."""
        with self._lock:
            self._offline_after = None
        return self

    def flip_bits(
        self, *, key: KeyMatch = None, at: int = -1, op: str | Iterable[str] = READS,
        times: int | None = None,
    ) -> FaultyBlobStore:  # fmt: skip
        """Reads return the data with the lowest bit of byte ``at`` flipped (bit rot)."""
        return self._add("flip", op, key, None, times, at=at)

    def short_reads(
        self, *, key: KeyMatch = None, keep: float = 0.5, op: str | Iterable[str] = READS,
        times: int | None = None,
    ) -> FaultyBlobStore:  # fmt: skip
        """Reads return only the first ``keep`` share of the data (a truncated transfer)."""
        return self._add("short", op, key, None, times, keep=keep)

    def delay(
        self, seconds: float, *, op: str | Iterable[str] | None = None, key: KeyMatch = None
    ) -> FaultyBlobStore:
        """Add ``seconds`` of latency to the matching calls (a slow disk)."""
        return self._add("delay", op, key, None, None, seconds=seconds)

    def block(
        self, gate: threading.Event, *, op: str | Iterable[str] | None = None,
        key: KeyMatch = None,
    ) -> FaultyBlobStore:  # fmt: skip
        """Hold the matching calls until ``gate`` is set (a stuck disk)."""
        return self._add("block", op, key, None, None, gate=gate)

    def limit_space(self, nbytes: int) -> FaultyBlobStore:
        """Make the store a volume of ``nbytes`` (what it holds counts as used): capacity says
        so, and a put that does not fit fails with ENOSPC, as a full disk does."""
        with self._lock:
            self._space = nbytes
        return self

    # -- the machinery ----------------------------------------------------------------------

    def _enter(self, op: str, key: str) -> builtins.list[_Rule]:
        """Record the call, raise or wait as the rules say; the data rules that apply."""
        with self._lock:
            self.calls.append((op, key))
            number = len(self.calls)
            if self._offline_after is not None and number > self._offline_after:
                self.fired.append(("offline", op, key))
                raise OSError(self._offline_errno, os.strerror(self._offline_errno), key)
            rules = [r for r in self._rules if r.matches(op, key, number)]
            for r in rules:
                if r.times is not None:
                    r.times -= 1
                if r.kind in ("fail", "delay", "block"):
                    self.fired.append((r.kind, op, key))
        for r in rules:
            if r.kind == "delay":
                time.sleep(r.seconds)
            elif r.kind == "block":
                assert r.gate is not None
                r.gate.wait()
            elif r.kind == "fail":
                raise OSError(r.errno, os.strerror(r.errno), key)
        return [r for r in rules if r.kind in ("flip", "short")]

    def _damage(self, rules: builtins.list[_Rule], op: str, key: str, data: bytes) -> bytes:
        for r in rules:
            if r.kind == "short":
                data = data[: int(len(data) * r.keep)]
            elif r.kind == "flip" and data:
                blob = bytearray(data)
                blob[r.at] ^= 0x01
                data = bytes(blob)
            with self._lock:
                self.fired.append((r.kind, op, key))
        return data

    def _used(self) -> int:
        return sum(size for _key, size in self.inner.list(""))

    # -- the BlobStore protocol --------------------------------------------------------------

    def put(
        self, key: str, data: BytesLike | Sequence[BytesLike], *, exclusive: bool = False,
        sync: bool = True,
    ) -> int:  # fmt: skip
        self._enter("put", key)
        if self._space is None:
            return self.inner.put(key, data, exclusive=exclusive, sync=sync)
        with self._filling:  # check and write as one step, as a file system allocates
            size = sum(len(p) for p in as_parts(data))
            if self._used() - (self.inner.size(key) or 0) + size > self._space:
                with self._lock:
                    self.fired.append(("full", "put", key))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), key)
            return self.inner.put(key, data, exclusive=exclusive, sync=sync)

    def get(self, key: str) -> bytes:
        rules = self._enter("get", key)
        return self._damage(rules, "get", key, self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        rules = self._enter("get_range", key)
        return self._damage(rules, "get_range", key, self.inner.get_range(key, offset, length))

    def read_into(self, key: str, offset: int, dest: memoryview) -> int:
        rules = self._enter("read_into", key)
        if not rules:
            reader = getattr(self.inner, "read_into", None)
            if reader is not None:
                return cast(int, reader(key, offset, dest))
        data = self._damage(rules, "read_into", key, self.inner.get_range(key, offset, len(dest)))
        dest[: len(data)] = data
        return len(data)

    def read_resident(self, key: str, parts: Sequence[memoryview]) -> bool:
        rules = self._enter("read_resident", key)
        if not rules:
            return cast(FolderStore, self.inner).read_resident(key, parts)
        data = self._damage(rules, "read_resident", key, self.inner.get(key))
        if len(data) != sum(len(p) for p in parts):
            return False
        at = 0
        for part in parts:
            part[:] = data[at : at + len(part)]
            at += len(part)
        return True

    def size(self, key: str) -> int | None:
        self._enter("size", key)
        return self.inner.size(key)

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        self._enter("list", prefix)
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._enter("delete", key)
        self.inner.delete(key)

    def flush(self) -> None:
        self._enter("flush", "")
        self.inner.flush()

    def capacity(self) -> Capacity | None:
        self._enter("capacity", "")
        if self._space is None:
            return capacity_of(self.inner)
        return Capacity(self._space, max(0, self._space - self._used()), volume=id(self))

    # -- what a folder store has besides (page cache, temp files): no faults there ----------

    @property
    def root(self) -> Path:
        return cast(FolderStore, self.inner).root

    def path(self, key: str) -> Path:
        return cast(FolderStore, self.inner).path(key)

    def temp_files(self) -> builtins.list[Path]:
        return cast(FolderStore, self.inner).temp_files()

    def count(self, kind: str, op: str | None = None) -> int:
        """How many faults of ``kind`` (fail, flip, short, delay, block, offline, full) fired."""
        with self._lock:
            return sum(1 for k, o, _key in self.fired if k == kind and op in (None, o))


class FaultyFolders:
    """A StoreFactory wrapping each folder's LocalBlobStore in one FaultyBlobStore for good."""

    def __init__(self) -> None:
        self.stores: dict[Path, FaultyBlobStore] = {}
        self._lock = threading.Lock()

    def __call__(self, root: Path) -> FaultyBlobStore:
        return self[root]

    def __getitem__(self, root: Path) -> FaultyBlobStore:
        """The wrapper of the store of ``root`` (made on first use)."""
        root = Path(root).absolute()
        with self._lock:
            store = self.stores.get(root)
            if store is None:
                store = self.stores[root] = FaultyBlobStore(LocalBlobStore(root))
            return store
