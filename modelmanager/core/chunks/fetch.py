"""The chunk read pipeline: chunks read in parallel across devices, decoded on a thread pool.

Two stages per chunk. Each device has its own small pool that reads raw piece bytes, so a slow
disk delays only its own chunks; a shared pool decodes, verifies each chunk against its hash and
hands the plain bytes to a sink (a copy into memory, or a write at the chunk's offset in a
file). At most ``MAX_IN_FLIGHT`` chunks are between the two (memory stays bounded), and the
window is refilled per device from whichever finishes first. A chunk whose first piece fails
(missing, corrupt, erasure-coded) is read by the store's full path, which falls back to other
copies or rebuilds from parity, and counts as degraded.

An erasure-coded chunk (no whole copy) has its K data fragments read at once, each on the pool
of the device holding it, and joined and decoded on the decode pool: a cold load of a version
spread as fragments over several devices reads them all in parallel, not one fragment after the
other in one reader thread (``FRAGMENT_LANES``; any failed fragment sends the chunk to the full
path).

A pinned chunk's hot copy (its plain bytes on a hot-tier device) is read first, on that
device's pool, straight into the destination buffer: no decode, only the hash check. A hot copy
that fails it is passed over for the policy's pieces (it never counts toward the policy).
Plain bytes read straight into place (a hot copy, an uncompressed copy) are hashed by the
reader thread that read them ("verified"): handing ~1 MiB chunks to the decode pool only to
hash them cost about a fifth of a warm load's time.

A load into memory first takes what is already in the page cache (:meth:`Fetcher._resident`):
one worker per core takes chunk after chunk, reads its first piece only if the OS can answer
from memory (``RWF_NOWAIT``: no disk wait, Linux), and decodes and verifies it in the same
thread. A warm load so skips the device queues and three thread hand-offs per chunk; what was
not resident goes through the queues above, so cold reads still run per device.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from modelmanager.core import codecs
from modelmanager.core.children import usable_cores
from modelmanager.core.chunks.layout import Layout
from modelmanager.core.chunks.placed import DevicePools, PlacedChunkStore
from modelmanager.core.chunks.selection import Selector
from modelmanager.core.chunks.store import (
    HEADER,
    chunk_key,
    decode_object,
    hot_key,
    parse_header,
)
from modelmanager.core.ids import BytesLike, content_id
from modelmanager.core.jobs import InFlight, JobContext, default_workers
from modelmanager.core.placement import Device
from modelmanager.core.redundancy import Fragment, Policy, decode_fragments
from modelmanager.core.storage import BlobNotFound
from modelmanager.core.storage.local import CAN_READ_RESIDENT
from modelmanager.errors import IntegrityError

#: Chunks between "read requested" and "handed to the sink" (about 16 x 4 MiB chunks plus their
#: decoded bytes; each device gets at least 2, so many devices may have a few more).
MAX_IN_FLIGHT = 16
#: Reader threads per device at least: enough to keep one disk's queue busy.
IO_THREADS = 2
#: Read an erasure-coded chunk's data fragments on their devices' pools at once (False: one
#: reader reads them one after the other, as before; benchmarks/load_devices.py compares).
FRAGMENT_LANES = True

#: Take chunks already in the page cache first, without the device queues (see the module doc);
#: where the OS cannot read "only from memory" every chunk goes through the queues.
RESIDENT_FIRST = CAN_READ_RESIDENT

#: The page-cache pass stops once this many more chunks were missed than found (cold).
COLD_AFTER = 4

#: Takes (offset in the file, a chunk's plain bytes). The bytes are the sink's to keep: the
#: fetcher hands each buffer over once and never writes to it again (the mount caches them).
Sink = Callable[[int, BytesLike], None]
#: A chunk to fetch: (lane, chunk id, length, offset in the file, layout, hot device or None).
Todo = tuple[str, str, int, int, Layout, Device | None]


class ChunkRefLike(Protocol):
    """A chunk of a file as a manifest records it."""

    @property
    def id(self) -> str: ...
    @property
    def length(self) -> int: ...


class ChunkedFile(Protocol):
    """A file as a manifest records it: its chunks in order (a ``FileRecord``)."""

    @property
    def chunks(self) -> Sequence[ChunkRefLike]: ...


class _Chunk(Future[int]):
    """One chunk's read then decode as one future, done (with its length) once its sink ran.

    ``cancel`` drops whichever stage has not started; a running stage is waited for, because
    the sink writes into the caller's buffers.
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        self.set_running_or_notify_cancel()  # ends only when its work does
        self.length = length
        self.stage: Future[None] | Future[tuple[str, BytesLike]] | None = None
        self.parts: list[Future[Fragment]] = []  # fragment reads, one per device pool
        self.stopped = False

    def cancel(self) -> bool:
        self.stopped = True
        for part in self.parts:
            part.cancel()  # the last one's callback ends this future
        stage = self.stage
        if stage is not None:
            stage.cancel()  # its callback ends this future
        return False

    def fail(self, stage: Future[Any]) -> bool:
        """End with the stage's error (or cancellation); False when it succeeded."""
        if stage.cancelled():
            self.set_exception(CancelledError())
            return True
        error = stage.exception()
        if error is not None:
            self.set_exception(error)
            return True
        return False

    def decode_on(self, pool: ThreadPoolExecutor, fn: Callable[..., None], *args: Any) -> None:
        """Run the decode stage ``fn(*args)`` on ``pool``; done with the chunk's length when it
        is, failed with its error, or with the pool's when it was shut down meanwhile."""
        try:
            job = pool.submit(fn, *args)
        except RuntimeError as e:  # the pool was shut down meanwhile
            self.set_exception(e)
            return
        self.stage = job
        job.add_done_callback(self._decoded)

    def _decoded(self, stage: Future[None]) -> None:
        if not self.fail(stage):
            self.set_result(self.length)


def data_fragments(layout: Layout) -> tuple[int, int, dict[int, Device]] | None:
    """(K, M, data fragment index -> the device its read starts from) of an erasure-coded chunk
    with no whole copy and all K data fragments present, else None (read by the full path)."""
    if layout.copies:
        return None
    for (k, m), frags in sorted(layout.fragments.items()):
        if all(frags.get(i) for i in range(k)):
            return k, m, {i: frags[i][0] for i in range(k)}
    return None


def _decode_into(blob: BytesLike, chunk_id: str, length: int, dest: memoryview) -> None:
    """``decode_object`` writing into ``dest`` (the chunk's place in the file buffer)."""
    key = chunk_key(chunk_id)
    head = parse_header(blob, key)
    if head.length != length:
        raise IntegrityError(
            f"chunk says it holds {head.length} bytes, the manifest says {length}", path=key
        )
    try:
        codecs.decode(head.codec_id, memoryview(blob)[HEADER.size :], length, dest)
    except IntegrityError as e:
        raise IntegrityError(e.message, path=key) from None
    if content_id(dest) != chunk_id:
        raise IntegrityError("chunk content does not match its hash", path=key)


def reader_threads(threads: int | None = None) -> int:
    """Reader threads per device of a fetcher with ``threads`` decode threads (default:
    :func:`default_workers`): never fewer than ``IO_THREADS``."""
    return max(IO_THREADS, threads or default_workers())


class Fetcher:
    """Per-device reader pools and one decode pool, shared by every file of one version.

    It reports progress in bytes (of ``total``) to ``ctx``, reads copies in the order
    ``selector`` gives and counts degraded reads.
    """

    def __init__(
        self, chunks: PlacedChunkStore, policy: Policy, ctx: JobContext, *, total: int,
        text: str, threads: int | None = None, selector: Selector | None = None,
        fragment_lanes: bool | None = None,
    ) -> None:  # fmt: skip
        self.chunks = chunks
        self.fragment_lanes = FRAGMENT_LANES if fragment_lanes is None else fragment_lanes
        self.policy = policy
        self.ctx = ctx
        self.total, self.text, self.done = total, text, 0
        self.threads = threads or default_workers()
        self.devices = DevicePools(self.chunks, reader_threads(self.threads), selector)
        self.decode = ThreadPoolExecutor(self.threads, "mm-decode")
        self.device_bytes: dict[str, int] = {}  # bytes fetched per lane (device name)
        #: Hot-tier devices that hold any hot copy, looked at once per fetcher (see module doc).
        self.hot = [d for d in chunks.hot_devices() if chunks.stores[d.id].path("hot").is_dir()]
        self._degraded_before = self.chunks.degraded_reads

    @property
    def degraded(self) -> int:
        """Reads so far that needed a fallback or found a chunk under-protected."""
        return self.chunks.degraded_reads - self._degraded_before

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.devices.close()
        self.decode.shutdown(wait=True, cancel_futures=True)

    def _read(
        self, chunk_id: str, length: int, layout: Layout, dest: memoryview | None,
        hot: Device | None = None,
    ) -> tuple[str, BytesLike]:  # fmt: skip
        """Reader stage: ("verified", b"") when plain bytes went straight into ``dest`` and
        match the chunk's hash; ("hot", b"") or ("hot", bytes) from the hot copy on ``hot``
        (into ``dest`` where given, unchecked or failing); ("placed", b"") when an uncompressed
        copy went straight into ``dest`` but failed its hash; ("object", the first copy's
        chunk object); or ("plain", bytes) from the full path."""
        if hot is not None:
            try:
                if dest is None:
                    return "hot", self.chunks.read_hot(hot, chunk_id)
                if self.chunks.read_hot_into(hot, chunk_id, dest):
                    return ("verified" if content_id(dest) == chunk_id else "hot"), b""
            except (BlobNotFound, OSError):
                pass  # gone since it was found: the policy's pieces below
        if layout.copies:
            try:
                if dest is not None and self.chunks.read_raw_copy_into(layout.copies[0],
                                                                       chunk_id, dest):  # fmt: skip
                    return ("verified" if content_id(dest) == chunk_id else "placed"), b""
                return "object", self.chunks.read_copy(layout.copies[0], chunk_id)
            except (BlobNotFound, IntegrityError, OSError):
                pass  # the full path falls back to other copies or parity
        return "plain", self.chunks.get(chunk_id, length, self.policy, layout)

    def _decode(
        self, kind: str, raw: BytesLike, chunk_id: str, length: int, layout: Layout,
        sink: Sink, offset: int, dest: memoryview | None,
    ) -> None:  # fmt: skip
        """Decode stage: verify (and decode) the chunk, then hand it to the sink."""
        if kind == "hot":  # a hot copy: verified like any piece, never decoded
            data = dest if dest is not None and not len(raw) else raw
            if len(data) == length and content_id(data) == chunk_id:
                if layout.tolerance() < self.policy.tolerates:
                    self.chunks.note_degraded()  # right bytes, but the policy's pieces lack
                if dest is None:
                    sink(offset, raw)
                return
            self.chunks.note_degraded()  # a bad hot copy: the policy's pieces (a fallback)
            kind, raw = "plain", self.chunks.get(chunk_id, length, self.policy, layout)
        good = kind == "plain"
        if kind == "placed":
            assert dest is not None
            good = content_id(dest) == chunk_id
        elif kind == "object":
            try:
                if dest is not None:  # decoded straight into place: no buffer, no copy
                    _decode_into(raw, chunk_id, length, dest)
                    kind = "placed"
                else:
                    raw = decode_object(raw, chunk_id, length, chunk_key(chunk_id))
                good = True
            except IntegrityError:
                good = False  # the full path's good bytes then overwrite what it left
        if not good:  # a bad first copy: the full path reads the others (a degraded read)
            kind, raw = "plain", self.chunks.get(chunk_id, length, self.policy, layout)
        elif kind != "plain" and layout.tolerance() < self.policy.tolerates:
            self.chunks.note_degraded()  # right bytes, but fewer pieces than the policy asks
        if kind != "placed":
            sink(offset, raw)

    def _join(
        self, parts: dict[int, Future[Fragment]], k: int, m: int, chunk_id: str, length: int,
        layout: Layout, sink: Sink, offset: int, dest: memoryview | None,
    ) -> None:  # fmt: skip
        """Decode stage of an erasure-coded chunk: join its data fragments (checked by the
        chunk's own hash), or read it by the full path when one could not be read."""
        try:
            obj: BytesLike = decode_fragments({i: f.result() for i, f in parts.items()}, k, m)
            kind = "object"
        except (IntegrityError, BlobNotFound, OSError):
            obj, kind = b"", "failed"  # the full path tries the other pieces, or parity
        self._decode(kind, obj, chunk_id, length, layout, sink, offset, dest)

    def _start_fragments(
        self, plan: tuple[int, int, dict[int, Device]], chunk_id: str, length: int,
        offset: int, layout: Layout, sink: Sink, dest: memoryview | None,
    ) -> _Chunk:  # fmt: skip
        """Read the K data fragments on their devices' pools at once, then join them."""
        k, m, devices = plan
        chunk = _Chunk(length)
        waiting = [len(devices)]
        lock = threading.Lock()

        def arrived(_part: Future[Fragment]) -> None:
            with lock:
                waiting[0] -= 1
                if waiting[0]:
                    return
            if chunk.stopped or any(p.cancelled() for p in chunk.parts):
                chunk.set_exception(CancelledError())
                return
            parts = dict(zip(devices, chunk.parts, strict=True))
            chunk.decode_on(self.decode, self._join, parts, k, m, chunk_id, length, layout,
                            sink, offset, dest)  # fmt: skip

        try:
            for i, device in devices.items():
                read = functools.partial(self.chunks.read_fragment, verify=False)  # the hash checks
                chunk.parts.append(self.devices.submit(device.name, read, device, k, m,
                                                       chunk_id, i))  # fmt: skip
        except RuntimeError as e:  # shut down meanwhile: nothing is left to wait for
            for part in chunk.parts:
                part.cancel()
            chunk.set_exception(e)
            return chunk
        for part in list(chunk.parts):
            part.add_done_callback(arrived)
        return chunk

    def _start(
        self, lane: str, chunk_id: str, length: int, offset: int, layout: Layout, sink: Sink,
        dest: memoryview | None, hot: Device | None = None,
    ) -> _Chunk:  # fmt: skip
        """Read the chunk on its device's pool, then decode it on the shared pool."""
        if hot is None and self.fragment_lanes:
            plan = data_fragments(layout)
            if plan is not None:
                return self._start_fragments(plan, chunk_id, length, offset, layout, sink, dest)
        chunk = _Chunk(length)

        def read(stage: Future[tuple[str, BytesLike]]) -> None:
            if chunk.fail(stage):
                return
            if chunk.stopped:
                chunk.set_exception(CancelledError())
                return
            kind, raw = stage.result()
            if kind == "verified":
                if layout.tolerance() < self.policy.tolerates:
                    self.chunks.note_degraded()  # right bytes, but the policy's pieces lack
                chunk.set_result(length)
                return
            chunk.decode_on(self.decode, self._decode, kind, raw, chunk_id, length, layout,
                            sink, offset, dest)  # fmt: skip

        stage = self.devices.submit(lane, self._read, chunk_id, length, layout, dest, hot)
        chunk.stage = stage
        stage.add_done_callback(read)
        return chunk

    def _plan(self, chunk_id: str, length: int, offset: int) -> Todo:
        """Where a chunk is read from: its hot copy's device, else its pieces' first."""
        lane, layout = self.devices.plan(chunk_id)
        held = self.chunks.hot_holders(chunk_id, self.hot) if self.hot else []
        hot = held[0] if held else None
        return (hot.name if hot else lane, chunk_id, length, offset, layout, hot)

    def _resident(
        self, chunks: list[tuple[str, int, int]], into: memoryview, sink: Sink
    ) -> list[Todo]:
        """Load the ``chunks`` (id, length, offset) whose first piece (the hot copy, else the
        first whole copy) is all in the page cache, one worker per core (on the decode pool),
        each planning, reading, decoding and verifying a chunk in one go; returns the others,
        planned, for the queues. Once clearly more chunks were missed than found (a cold
        load), the pass stops and leaves the rest to the queues: a read "only from memory"
        of a chunk that is not there still starts the disk's readahead, and 286 of them cost
        a cold load of 1 GiB 0.2-0.5 s."""
        taken = iter(enumerate(chunks))
        take = threading.Lock()
        missed: list[tuple[int, Todo]] = []
        done = [0, 0]  # bytes, chunks
        halt = threading.Event()  # a worker failed, or the load is cold: stop taking chunks

        def next_chunk() -> tuple[int, tuple[str, int, int]] | None:
            with take:
                if halt.is_set() or self.ctx.cancel_event.is_set():
                    return None
                return next(taken, None)

        def worker() -> None:
            scratch = bytearray()
            try:
                while (item := next_chunk()) is not None:
                    t = self._plan(*item[1])
                    resident = self._one_resident(t, into, sink, scratch)
                    with take:
                        if not resident:
                            missed.append((item[0], t))
                            if len(missed) >= done[1] + COLD_AFTER:
                                halt.set()  # cold: the queues read the rest
                            continue
                        done[0] += t[2]
                        done[1] += 1
                        self.device_bytes[t[0]] = self.device_bytes.get(t[0], 0) + t[2]
            except BaseException:
                halt.set()
                raise

        # One worker per core: a chunk in memory is all CPU work (copy, decode, hash), so more
        # workers only take turns (MiniLM, 2 cores: 46 ms with 2 workers, 57 ms with 4).
        count = min(self.threads, usable_cores(), len(chunks))
        workers = [self.decode.submit(worker) for _ in range(count)]
        running, reported = True, 0
        while running:
            running = bool(wait(workers, timeout=0.1).not_done)
            if done[0] != reported:
                reported = done[0]
                self.ctx.report(self.done + reported, self.total, self.text)
        for w in workers:
            w.result()  # a worker's error (a chunk lost on every copy) ends the load here
        self.done += done[0]
        self.ctx.check()
        rest = [(i, self._plan(*c)) for i, c in taken]  # not taken: the load was cold
        return [t for _i, t in sorted(missed + rest, key=lambda m: m[0])]

    def _one_resident(self, t: Todo, into: memoryview, sink: Sink, scratch: bytearray) -> bool:
        """Load one chunk if its first piece is all in memory (see :meth:`_resident`)."""
        _lane, cid, length, at, layout, hot = t
        dest = into[at : at + length]
        try:
            if hot is not None:
                store = self.chunks.stores[hot.id]
                if not store.read_resident(hot_key(cid), [dest]) or content_id(dest) != cid:
                    return False  # not in memory, or a bad hot copy: the queues (degraded)
            elif not layout.copies:
                return False  # fragments: read on their devices' queues
            else:
                store, key = self.chunks.stores[layout.copies[0].id], chunk_key(cid)
                size = store.size(key)
                if size is None:
                    return False
                if len(scratch) < size:
                    scratch.extend(bytes(size - len(scratch)))
                if size == HEADER.size + length:  # stored as is, most likely: read into place
                    head = memoryview(scratch)[: HEADER.size]
                    if not store.read_resident(key, [head, dest]):
                        return False
                    info = parse_header(head, key)
                    if info.codec_id != codecs.RAW_ID or info.length != length:
                        return False  # coded after all (a payload as long as its plain bytes)
                    if content_id(dest) != cid:  # a bad copy: _decode reads the others
                        self._decode("placed", b"", cid, length, layout, sink, at, dest)
                        return True
                else:
                    raw = memoryview(scratch)[:size]
                    if not store.read_resident(key, [raw]):
                        return False
                    self._decode("object", raw, cid, length, layout, sink, at, dest)
                    return True
        except (OSError, BlobNotFound, IntegrityError):
            return False  # the queues read it again, and report what is wrong
        if layout.tolerance() < self.policy.tolerates:
            self.chunks.note_degraded()  # right bytes, but the policy's pieces lack
        return True

    def fetch(self, f: ChunkedFile, sink: Sink, into: memoryview | None = None) -> None:
        """Every chunk of ``f`` handed to ``sink(offset, plain bytes)``, in any order.

        ``into``, the file's whole buffer when loading into memory, lets uncompressed copies
        be read, and compressed ones decoded, straight into place (the sink is then skipped
        for them; it still writes the chunks the full path had to rebuild).
        """
        chunks: list[tuple[str, int, int]] = []
        offset = 0
        for ref in f.chunks:
            chunks.append((ref.id, ref.length, offset))
            offset += ref.length
        if into is not None and RESIDENT_FIRST:
            todo = self._resident(chunks, into, sink)
        else:
            todo = [self._plan(*c) for c in chunks]
        share = max(2, MAX_IN_FLIGHT // max(1, len({t[0] for t in todo})))

        def start(t: Todo) -> _Chunk:
            lane, cid, length, at, layout, hot = t
            dest = into[at : at + length] if into is not None else None
            return self._start(lane, cid, length, at, layout, sink, dest, hot)

        with InFlight(todo, start, share, ctx=self.ctx, lane=lambda t: t[0]) as running:
            for (lane, _cid, length, _at, _layout, _hot), fut in running:
                fut.result()
                self.device_bytes[lane] = self.device_bytes.get(lane, 0) + length
                self.done += length
                self.ctx.report(self.done, self.total, self.text)
