"""The BlobStore protocol: put / get / size / list / delete / flush over '/'-separated keys.

Local folders, device roots and (later) object stores implement it; wrappers add behaviour
(fault injection, read-only) and one conformance suite checks them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
