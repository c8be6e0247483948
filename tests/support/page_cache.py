"""Seeing and emptying what the OS page cache holds of a file, for tests of cold reads.

``posix_fadvise(DONTNEED)`` is best effort: a page another thread still holds, or one the
flusher is writing back, stays cached (a clean-clone CI run once kept one chunk of six). Tests
that assert which reads go to the disk evict with :func:`evict_until_cold`, which checks with
``mincore`` (it looks without reading, so it starts no readahead) and tries again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]  # fmt: skip
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_MAP_FAILED = ctypes.c_void_p(-1).value


def cached_pages(path: Path) -> int:
    """How many of ``path``'s pages are in the page cache now (read without touching them)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"mmap {path}")
        try:
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = ctypes.create_string_buffer(pages)
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), f"mincore {path}")
            return sum(b & 1 for b in vec.raw)
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


def evict_until_cold(paths: Iterable[Path], evict: Callable[[], bool], tries: int = 50) -> None:
    """Run ``evict`` (after a sync, as dirty pages cannot be dropped) until none of ``paths``
    has a page cached; fails the test when the kernel keeps one through every try."""
    paths = list(paths)
    for _ in range(tries):
        os.sync()
        assert evict()
        if not any(cached_pages(p) for p in paths):
            return
        time.sleep(0.05)
    kept = [str(p) for p in paths if cached_pages(p)]
    raise AssertionError(f"the page cache kept {kept} through {tries} evictions")
