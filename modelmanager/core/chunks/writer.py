"""The chunk writer of an import: hash, deduplicate, compress and store chunks on a pool."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.faults import crash_point
from modelmanager.core.ids import content_id
from modelmanager.core.redundancy import Policy


class ChunkWriter:
    """Hashes, deduplicates and stores chunks on a thread pool, one buffer per chunk in flight.

    Buffers of ``chunk_size`` bytes are reused (:meth:`buffer`, :meth:`release`), so memory in
    flight is ``window`` chunks. A chunk already stored to ``policy``, or seen earlier in this
    import, is not written again. Use as a context manager.
    """

    def __init__(
        self, chunks: PlacedChunkStore, chunk_size: int, settings: CodecSettings,
        policy: Policy, workers: int,
    ) -> None:  # fmt: skip
        self.chunks = chunks
        self.settings = settings
        self.policy = policy
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="mm-import")
        self.window = workers * 2
        self.chunk_size = chunk_size
        self._free: list[bytearray] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.new_chunks = 0
        self.new_bytes = 0

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def buffer(self) -> bytearray:
        """A free buffer of one chunk's size."""
        return self._free.pop() if self._free else bytearray(self.chunk_size)

    def release(self, buf: bytearray) -> None:
        """Give a buffer back once its chunk is stored."""
        self._free.append(buf)

    def submit(self, data: memoryview, hint: str | None = None) -> Future[tuple[str, int]]:
        """Store ``data`` on the pool (see :meth:`store`); ``hint`` is its tensors' dtype."""
        return self.pool.submit(self.store, data, hint)

    def store(self, data: memoryview, hint: str | None = None) -> tuple[str, int]:
        """(chunk id, stored bytes if newly written else 0); runs on a pool thread."""
        cid = content_id(data)
        with self._lock:
            first = cid not in self._seen
            self._seen.add(cid)
        if not first or self.chunks.has(cid, self.policy):
            return cid, 0
        stored = self.chunks.put(cid, data, self.settings, self.policy, hint)
        crash_point("chunk-written")
        with self._lock:
            self.new_chunks += 1
            self.new_bytes += stored
        return cid, stored

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
