"""Emptying and filling the OS page cache for single files, for cold reads and "keep warm".

Linux (and the BSDs) have ``posix_fadvise``: DONTNEED drops a file's clean cached pages, so the
next read comes from the device (a cold read); WILLNEED starts reading it in. macOS and Windows
have no per-file way to drop cached pages without privileges, so :func:`evict` returns False
there and callers report those reads as warm. Pages that are dirty (not yet written back) stay
cached: chunk files are synced when written, so theirs are clean.
"""

from __future__ import annotations

import os
from pathlib import Path

#: True where :func:`evict` can really empty the cache of a file.
SUPPORTED = hasattr(os, "posix_fadvise")
_READ_BLOCK = 1 << 20


def evict(path: Path) -> bool:
    """Drop ``path``'s pages from the page cache; False where the platform cannot."""
    if not SUPPORTED:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        return False
    else:
        return True
    finally:
        os.close(fd)


def read_through(path: Path, buf: bytearray | None = None, *, advise: bool = False) -> int:
    """Read all of ``path`` into a reused buffer and drop it; the bytes read (0 if unreadable).

    ``advise`` first tells the OS the whole file will be needed (it may read ahead).
    """
    total = 0
    buf = buf if buf is not None else bytearray(_READ_BLOCK)
    try:
        with open(path, "rb", buffering=0) as f:
            if advise and SUPPORTED:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
            while n := f.readinto(buf):
                total += n
    except OSError:
        return total
    return total


def prefetch(path: Path) -> int:
    """Read ``path`` once so that its pages are cached; the bytes read (0 if it is gone)."""
    return read_through(path, advise=True)
