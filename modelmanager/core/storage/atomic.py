"""Durable file writes: temp file, fsync, rename, fsync the folder (RELIABILITY.md rule 1)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from modelmanager.core.ids import BytesLike

TEMP_PREFIX = ".tmp-"
#: A whole blob written beside its key, verified, then renamed over it (recompress): one left
#: behind by a process that died is garbage like a temp file.
REPLACE_SUFFIX = ".recompress"


def fsync_fd(fd: int) -> None:
    """Flush a file to stable storage; on macOS plain fsync leaves data in the drive cache."""
    if sys.platform == "darwin":
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
        except OSError:
            os.fsync(fd)
        else:
            return
    os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """Make the entries of a folder durable (a no-op where folders cannot be opened: Windows)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fsync_fd(fd)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    """A unique temporary name beside ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{path.name}")


def write_parts(path: Path, parts: Sequence[BytesLike]) -> int:
    """Write ``parts`` to a new file at ``path`` and fsync it; return the bytes written."""
    total = 0
    with open(path, "xb") as f:
        for part in parts:
            f.write(part)
            total += len(part)
        f.flush()
        fsync_fd(f.fileno())
    return total


def as_parts(data: BytesLike | Sequence[BytesLike]) -> Sequence[BytesLike]:
    """Treat one buffer or a sequence of buffers alike."""
    return [data] if isinstance(data, (bytes, bytearray, memoryview)) else data


def replace_file(path: Path, data: BytesLike | Sequence[BytesLike], *, exclusive: bool) -> int:
    """Write a synced temp file and rename it to ``path``; the folder itself is not synced.

    ``exclusive`` raises FileExistsError when ``path`` exists. Returns the bytes written.
    """
    tmp = temp_path_for(path)
    try:
        size = write_parts(tmp, as_parts(data))
        if exclusive:
            link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return size


def atomic_write(
    path: Path, data: BytesLike | Sequence[BytesLike], *, exclusive: bool = False
) -> int:
    """Replace (or, with ``exclusive``, create) ``path`` atomically and durably.

    Readers see the old content or the new, never a mix; after return the new content and its
    name survive a power loss.
    """
    size = replace_file(path, data, exclusive=exclusive)
    fsync_dir(path.parent)
    return size


def replace_unsynced(path: Path, data: BytesLike) -> None:
    """Replace ``path`` atomically but not durably: readers see the old content or the new;
    a power loss may leave either, or a damaged file. For records whose loss costs a re-read
    (a hint, a position), not data: it saves the two syncs of :func:`atomic_write`."""
    tmp = temp_path_for(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def link_exclusive(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if nothing has that name yet (FileExistsError)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        # File systems without hard links (FAT, exFAT on USB disks): check, then rename.
        # Callers hold the repository's writer lock, so nobody races between the two steps.
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)
