"""Read parts of a version's files on demand: only the chunks a byte range spans are fetched.

The same fetcher as a load (:class:`modelmanager.services.loading.Fetcher`: every chunk
verified against its id, other copies or parity on a bad one). Small reads (headers, the
bytes a format needs beside a tensor) keep their chunks in a bounded cache, so reading many
small things from one region fetches it once; a tensor's own bytes are not cached.
"""

from __future__ import annotations

import bisect
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest
from modelmanager.errors import NotFoundError
from modelmanager.services import Workspace
from modelmanager.services.loading import Fetcher
from modelmanager.services.tensors import Bytes

#: Bytes of chunks the small-read cache keeps (least recently used dropped first).
CACHE_BYTES = 64 << 20
#: A read up to this size goes through the cache.
SMALL_READ = 1 << 20


@dataclass(frozen=True)
class _Span:
    """Consecutive chunks of one file, as the fetcher takes a file."""

    chunks: tuple[ChunkRef, ...]


class VersionReader:
    """Byte ranges of one version's files, fetched chunk by chunk as asked (close it after)."""

    def __init__(self, ws: Workspace, manifest: Manifest, *, threads: int | None = None) -> None:
        self.manifest = manifest
        self.files = {f.path: f for f in manifest.files}
        self._fetcher = Fetcher(ws, manifest, JobContext(), threads=threads)
        self._starts: dict[str, list[int]] = {}
        self._cache: OrderedDict[tuple[str, int], Bytes] = OrderedDict()
        self._cached = 0

    def close(self) -> None:
        self._fetcher.close()

    def file(self, path: str) -> FileRecord:
        """The file ``path`` of the version; NotFoundError naming it otherwise."""
        found = self.files.get(path)
        if found is None:
            raise NotFoundError(f"{self.manifest.ref} has no file {path!r}")
        return found

    def _chunk_starts(self, f: FileRecord) -> list[int]:
        starts = self._starts.get(f.path)
        if starts is None:
            starts = [0, *itertools.accumulate(c.length for c in f.chunks)]
            self._starts[f.path] = starts
        return starts

    def _fetch(self, f: FileRecord, first: int, last: int) -> Bytes:
        """Chunks ``first`` to ``last`` (inclusive) of ``f`` in one buffer."""
        chunks = f.chunks[first : last + 1]
        data = np.empty(sum(c.length for c in chunks), np.uint8)

        def into(at: int, plain: BytesLike) -> None:
            data[at : at + len(plain)] = np.frombuffer(plain, np.uint8)

        self._fetcher.fetch(_Span(chunks), into, memoryview(data.data))
        return data

    def read(self, f: FileRecord, start: int, end: int) -> Bytes:
        """Bytes ``start`` to ``end`` of ``f`` (clipped to the file)."""
        start, end = max(0, start), min(end, f.size)
        if end <= start:
            return np.empty(0, np.uint8)
        starts = self._chunk_starts(f)
        first = bisect.bisect_right(starts, start) - 1
        last = bisect.bisect_left(starts, end) - 1
        if end - start <= SMALL_READ:
            parts = [self._cached_chunk(f, k) for k in range(first, last + 1)]
            data = parts[0] if len(parts) == 1 else np.concatenate(parts)
            part: Bytes = data[start - starts[first] : end - starts[first]]
            return np.array(part)  # a copy: the cache keeps its own
        data = self._fetch(f, first, last)
        return data[start - starts[first] : end - starts[first]]

    def _cached_chunk(self, f: FileRecord, k: int) -> Bytes:
        key = (f.path, k)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        data = self._fetch(f, k, k)
        self._cache[key] = data
        self._cached += len(data)
        while self._cached > CACHE_BYTES and len(self._cache) > 1:
            _key, dropped = self._cache.popitem(last=False)
            self._cached -= len(dropped)
        return data

    def __enter__(self) -> VersionReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
