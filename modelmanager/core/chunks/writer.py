"""The chunk writer of an import: hash, deduplicate, compress and store chunks on a pool,
and :func:`write_file`, which reads one file once, in order, into the writer's buffers while
its tensors are digested on the way."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelmanager.core.chunks.digests import TensorDigests
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.chunks.plan import Range
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.faults import crash_point
from modelmanager.core.formats.base import DtypeHints, FileIndex, TensorEntry
from modelmanager.core.ids import content_id
from modelmanager.core.jobs import InFlight, JobContext
from modelmanager.core.localfiles import open_regular
from modelmanager.core.redundancy import Policy
from modelmanager.errors import UserError


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


@dataclass(frozen=True)
class WrittenFile:
    """A file stored by :func:`write_file`: its chunk ids (one per range, in order) and each
    tensor with the digest of its bytes, in file order."""

    chunk_ids: tuple[str, ...]
    tensors: tuple[tuple[TensorEntry, str], ...]


@dataclass(frozen=True)
class FileToWrite:
    """A checked input file: where it is, the size and mtime it was indexed at, its listed
    (device, inode) identity, its index, and the ranges to cut it into."""

    path: Path
    size: int
    mtime_ns: int
    identity: tuple[int, int]
    index: FileIndex
    ranges: Sequence[Range]


def _read_exact(f: BinaryIO, view: memoryview, path: Path) -> None:
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            raise UserError("file shrank while it was being imported; try again", path=path)
        got += n


def _check_unchanged(f: BinaryIO, src: FileToWrite, when: str) -> None:
    st = os.fstat(f.fileno())
    if (st.st_size, st.st_mtime_ns) != (src.size, src.mtime_ns):
        raise UserError(f"file changed {when}; try again", path=src.path)


def write_file(src: FileToWrite, writer: ChunkWriter, ctx: JobContext,
               stored: Callable[[int], None]) -> WrittenFile:  # fmt: skip
    """Read ``src`` once, in order, into the writer's buffers; the writer stores the chunks (at
    most its window in flight) while this thread digests tensors. ``stored(n)`` is called as
    each chunk of n bytes is stored, in order. A file that changes, shrinks or grows while it
    is read, or cannot be read, is a UserError naming it: nothing of it is referenced then."""
    digests = TensorDigests(src.index.tensors)
    hints = DtypeHints(src.index)
    ids: list[str] = []
    buffers: deque[bytearray] = deque()  # of the chunks in flight, in order

    def read_and_store(chunk: tuple[int, Range]) -> Future[tuple[str, int]]:
        chunk_no, (start, end) = chunk
        buf = writer.buffer()
        buffers.append(buf)
        view = memoryview(buf)[: end - start]
        _read_exact(f, view, src.path)
        digests.feed(chunk_no, start, view)
        return writer.submit(view, hints.of(start, end))

    try:
        with open_regular(src.path, src.identity, buffering=0) as f:
            _check_unchanged(f, src, "since it was checked")
            with InFlight(enumerate(src.ranges), read_and_store, writer.window, ctx=ctx,
                          ordered=True) as done:  # fmt: skip
                for (_no, (start, end)), fut in done:
                    cid, _stored = fut.result()
                    writer.release(buffers.popleft())
                    ids.append(cid)
                    stored(end - start)
            if f.read(1):  # more than its size: still being written, or a /proc-like file
                raise UserError("holds more bytes than its size says (still being written?); "
                                "try again", path=src.path)  # fmt: skip
            _check_unchanged(f, src, "while it was being imported")
    except OSError as e:
        raise UserError(f"cannot read file ({e.strerror or e})", path=src.path) from None
    return WrittenFile(tuple(ids), tuple(digests.results(ids)))


def unstored_bytes(chunks: PlacedChunkStore, files: Sequence[FileToWrite], policy: Policy,
                   ctx: JobContext) -> int:  # fmt: skip
    """Bytes of the chunks of ``files`` not yet stored to ``policy`` (each counted once),
    found by hashing them (BLAKE3) without storing anything: what an import would write."""
    new = 0
    seen: set[str] = set()
    for src in files:
        try:
            with open_regular(src.path, src.identity) as f:
                for start, end in src.ranges:
                    ctx.check()
                    f.seek(start)
                    cid = content_id(f.read(end - start))
                    if cid not in seen and not chunks.has(cid, policy):
                        new += end - start
                    seen.add(cid)
        except OSError as e:
            raise UserError(f"cannot read file ({e.strerror or e})", path=src.path) from None
    return new
