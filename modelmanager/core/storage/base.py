"""The BlobStore protocol: put / get / size / list / delete / flush over '/'-separated keys.

Local folders, device roots and object stores implement it; wrappers add behaviour (fault
injection in the tests, read-only) and one conformance suite (tests/conformance) checks them all.
A :class:`FolderStore` is a BlobStore in a local folder (device roots, the repository's own
files); a :data:`StoreFactory` builds one per folder, so tests can wrap every device's store.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelmanager.core.ids import BytesLike
from modelmanager.errors import ModelManagerError


class BlobNotFound(ModelManagerError):
    """The key names no blob."""


def check_key(key: str) -> str:
    """``key`` if it is a safe relative '/'-path, else ValueError (a bug, never user input)."""
    if not key or key.startswith("/") or "\\" in key or "\0" in key:
        raise ValueError(f"unsafe blob key {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"unsafe blob key {key!r}")
    return key


class BlobStore(Protocol):
    """Where a repository keeps its bytes. Every put is atomic: a reader sees all or nothing."""

    def put(
        self,
        key: str,
        data: BytesLike | Sequence[BytesLike],
        *,
        exclusive: bool = False,
        sync: bool = True,
    ) -> int:
        """Store ``data`` (or the concatenation of its parts) under ``key``; return its size.

        ``exclusive`` fails with FileExistsError when the key exists. ``sync=False`` defers
        making the new name durable until :meth:`flush` (the data itself is always synced).
        """
        ...

    def get(self, key: str) -> bytes:
        """The whole blob; BlobNotFound when absent."""
        ...

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end); BlobNotFound when absent."""
        ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """Every (key, size) under the folder ``prefix`` (recursively), in no set order."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error."""
        ...

    def flush(self) -> None:
        """Make every put since the last flush durable (names included)."""
        ...


@dataclass(frozen=True)
class Capacity:
    """Space on the volume a store writes to; ``volume`` tells two stores on one volume apart
    from two on different ones (their free space must be counted once)."""

    total: int
    free: int
    volume: object


def capacity_of(store: BlobStore) -> Capacity | None:
    """The store's capacity, or None where it cannot tell (object stores, a failing disk)."""
    measure = getattr(store, "capacity", None)
    return measure() if callable(measure) else None


class FolderStore(BlobStore, Protocol):
    """A BlobStore kept in a local folder, whose blobs are files (a device root)."""

    root: Path

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (for page-cache control; reads go through the store)."""
        ...

    def read_into(self, key: str, offset: int, dest: memoryview) -> int:
        """Fill ``dest`` from ``offset`` without an intermediate buffer; bytes read (fewer at
        the end); BlobNotFound when absent."""
        ...

    def read_resident(self, key: str, parts: Sequence[memoryview]) -> bool:
        """Fill ``parts``, in order, with the whole blob only if it is exactly that long and
        the OS can answer from memory (the page cache), without waiting for the disk; False
        otherwise (``parts`` may be partly written), and always where the OS cannot tell."""
        ...

    def capacity(self) -> Capacity | None:
        """Size and free space of the folder's volume; None when it cannot be read."""
        ...

    def temp_files(self) -> builtins.list[Path]:
        """Temporary files left by writers that died before renaming them."""
        ...


#: Builds the store of one folder: ``LocalBlobStore`` by default, a wrapper in tests.
StoreFactory = Callable[[Path], FolderStore]
