"""Load a version fast: chunks read in parallel across devices, decoded on a thread pool.

Two stages per chunk. Each device has its own small pool that reads raw piece bytes, so a slow
disk delays only its own chunks; a shared pool decodes, verifies each chunk against its hash and
hands the plain bytes to a sink (a copy into memory, or a write at the chunk's offset in a
file). At most ``MAX_IN_FLIGHT`` chunks are between the two (memory stays bounded), and the
window is refilled per device from whichever finishes first. A chunk whose first piece fails
(missing, corrupt, erasure-coded) is read by the store's full path, which falls back to other
copies or rebuilds from parity, and counts as degraded.

Export (to a folder) uses the same fetcher with a file sink; :func:`load_version` loads into
memory: one buffer per file, with numpy views of each tensor for safetensors and .npy files.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelmanager.core.catalog import best_strategy, device_speeds
from modelmanager.core.chunks.placed import DevicePools, Layout
from modelmanager.core.chunks.selection import WEIGHTED, Selector
from modelmanager.core.chunks.store import chunk_key, decode_object
from modelmanager.core.ids import BytesLike, content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import FileRecord, Manifest
from modelmanager.core.storage import BlobNotFound, page_cache
from modelmanager.errors import IntegrityError
from modelmanager.services import Workspace
from modelmanager.services.importing import default_workers

#: Chunks between "read requested" and "handed to the sink" (about 16 x 4 MiB chunks plus their
#: decoded bytes; each device gets at least 2, so many devices may have a few more).
MAX_IN_FLIGHT = 16
#: Reader threads per device by default: enough to keep one disk's queue busy.
IO_THREADS = 2
#: The strategy used when the user names none and no benchmark has measured one better: spread
#: reads in proportion to each device's measured speed (see docs/benchmarks.md, load).
DEFAULT_STRATEGY = WEIGHTED

Sink = Callable[[int, BytesLike], None]


class Fetcher:
    """Per-device reader pools and one decode pool, shared by every file of one version.

    It reports the version's progress in bytes to ``ctx``, picks copies with the strategy
    given (else the best measured: :func:`selector_for`) and counts degraded reads.
    """

    def __init__(
        self, ws: Workspace, manifest: Manifest, ctx: JobContext, *,
        threads: int | None = None, strategy: str | None = None,
    ) -> None:  # fmt: skip
        self.chunks = ws.repo.chunks
        self.policy = ws.repo.policy_for(manifest.model)
        self.ctx = ctx
        self.total, self.text, self.done = manifest.logical_bytes, manifest.ref, 0
        self.threads = threads or default_workers()
        selector = selector_for(ws, strategy)
        self.devices = DevicePools(self.chunks, max(IO_THREADS, self.threads), selector)
        self.decode = ThreadPoolExecutor(self.threads, "mm-decode")
        self.device_bytes: dict[str, int] = {}  # bytes fetched per lane (device name)
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
        self, chunk_id: str, length: int, layout: Layout, dest: memoryview | None
    ) -> tuple[str, BytesLike]:
        """Reader stage: ("placed", b"") when an uncompressed copy went straight into ``dest``;
        ("object", the first copy's chunk object); or ("plain", bytes) from the full path."""
        if layout.copies:
            try:
                if dest is not None and self.chunks.read_raw_copy_into(layout.copies[0],
                                                                       chunk_id, dest):  # fmt: skip
                    return "placed", b""
                return "object", self.chunks.read_copy(layout.copies[0], chunk_id)
            except (BlobNotFound, IntegrityError, OSError):
                pass  # the full path falls back to other copies or parity
        return "plain", self.chunks.get(chunk_id, length, self.policy, layout)

    def _decode(
        self, kind: str, raw: BytesLike, chunk_id: str, length: int, layout: Layout,
        sink: Sink, offset: int, dest: memoryview | None,
    ) -> None:  # fmt: skip
        """Decode stage: verify (and decode) the chunk, then hand it to the sink."""
        good = kind == "plain"
        if kind == "placed":
            assert dest is not None
            good = content_id(dest) == chunk_id
        elif kind == "object":
            try:
                raw = decode_object(raw, chunk_id, length, chunk_key(chunk_id))
                good = True
            except IntegrityError:
                good = False
        if not good:  # a bad first copy: the full path reads the others (a degraded read)
            kind, raw = "plain", self.chunks.get(chunk_id, length, self.policy, layout)
        elif kind != "plain" and layout.tolerance() < self.policy.tolerates:
            self.chunks.note_degraded()  # right bytes, but fewer pieces than the policy asks
        if kind != "placed":
            sink(offset, raw)

    def fetch(self, f: FileRecord, sink: Sink, into: memoryview | None = None) -> None:
        """Every chunk of ``f`` handed to ``sink(offset, plain bytes)``, in any order.

        ``into``, the file's whole buffer when loading into memory, lets uncompressed copies
        be read straight into place (the sink is then skipped for them).
        """
        queues: dict[str, deque[tuple[str, int, int, Layout]]] = {}
        offset = 0
        for ref in f.chunks:
            lane, layout = self.devices.plan(ref.id)
            queues.setdefault(lane, deque()).append((ref.id, ref.length, offset, layout))
            offset += ref.length
        share = max(2, MAX_IN_FLIGHT // max(1, len(queues)))
        busy = dict.fromkeys(queues, 0)
        # Each future is a chunk's read (stage "read") or its decode (stage "decode").
        inflight: dict[Future[Any], tuple[str, str, str, int, int, Layout]] = {}
        try:
            while inflight or any(queues.values()):
                self.ctx.check()
                for lane, queue in queues.items():
                    while queue and busy[lane] < share:
                        cid, length, at, layout = queue.popleft()
                        dest = into[at : at + length] if into is not None else None
                        fut = self.devices.submit(lane, self._read, cid, length, layout, dest)
                        inflight[fut] = ("read", lane, cid, length, at, layout)
                        busy[lane] += 1
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    stage, lane, cid, length, at, layout = inflight.pop(fut)
                    if stage == "read":
                        kind, raw = fut.result()
                        dest = into[at : at + length] if into is not None else None
                        job = self.decode.submit(self._decode, kind, raw, cid, length, layout,
                                                 sink, at, dest)  # fmt: skip
                        inflight[job] = ("decode", lane, cid, length, at, layout)
                    else:
                        fut.result()
                        busy[lane] -= 1
                        self.device_bytes[lane] = self.device_bytes.get(lane, 0) + length
                        self.done += length
                        self.ctx.report(self.done, self.total, self.text)
        finally:
            for fut in inflight:
                fut.cancel()
            wait(inflight)  # sinks write into the caller's buffers: finish before they go


# -- loading into memory ---------------------------------------------------------------

#: safetensors dtype spelling -> numpy type (bf16 and fp8 need ml_dtypes; see _numpy_dtype).
_NUMPY = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
    "I32": "<i4", "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8",
    "C64": "<c8", "F32_BE": ">f4", "F64_BE": ">f8", "F16_BE": ">f2",
}  # fmt: skip
_ML_DTYPES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
#: Formats whose tensors are plain contiguous arrays at their recorded byte ranges.
ARRAY_FORMATS = ("safetensors", "npy")


def _numpy_dtype(name: str) -> np.dtype[Any] | None:
    """The numpy dtype of a safetensors dtype name; None when numpy cannot hold it."""
    if name in _NUMPY:
        return np.dtype(_NUMPY[name])
    if name in _ML_DTYPES:
        try:
            import ml_dtypes  # optional: numpy itself has no bf16 or fp8
        except ImportError:
            return None
        return np.dtype(getattr(ml_dtypes, _ML_DTYPES[name]))  # type: ignore[no-any-return]
    return None


@dataclass
class LoadedFile:
    """One file in memory: its bytes, and numpy views of its tensors where it has them."""

    path: str
    data: Bytes
    tensors: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)

    def bytes(self) -> bytes:
        return self.data.tobytes()


@dataclass
class LoadResult:
    """What a load read, how long it took and from which devices."""

    manifest: Manifest
    files: dict[str, LoadedFile]
    seconds: float
    device_bytes: dict[str, int]
    degraded_chunks: int = 0

    @property
    def bytes(self) -> int:
        return self.manifest.logical_bytes

    @property
    def throughput(self) -> float:
        """Bytes per second of the whole load."""
        return self.bytes / max(self.seconds, 1e-9)

    def arrays(self) -> dict[str, np.ndarray[Any, Any]]:
        """Every tensor of every file, by name (the first file wins on a clash)."""
        out: dict[str, np.ndarray[Any, Any]] = {}
        for f in self.files.values():
            for name, array in f.tensors.items():
                out.setdefault(name, array)
        return out


Bytes = np.ndarray[Any, np.dtype[np.uint8]]


def _views(f: FileRecord, data: Bytes) -> dict[str, np.ndarray[Any, Any]]:
    if f.format not in ARRAY_FORMATS or f.metadata.get("fortran_order") == "true":
        return {}
    out: dict[str, np.ndarray[Any, Any]] = {}
    for t in f.tensors:
        dtype = _numpy_dtype(t.dtype)
        if dtype is None or t.numel * dtype.itemsize != t.nbytes:
            continue  # not representable: the bytes are still in ``data``
        out[t.name] = data[t.start : t.end].view(dtype).reshape(t.shape)
    return out


def selector_for(ws: Workspace, strategy: str | None = None) -> Selector:
    """The replica selector a load uses: ``strategy``, else the best one benchmarked here.

    Device throughputs (for weighted and fastest) come from the newest cold raw-read benchmark
    of each device stored in the catalog (read once for both).
    """
    rows = ws.catalog.bench_rows()
    chosen = strategy or best_strategy(rows) or DEFAULT_STRATEGY
    return Selector(chosen, device_speeds(rows))


def evict_version(ws: Workspace, manifest: Manifest) -> bool:
    """Drop every piece of a version from the page cache; False where that is not possible."""
    ok = page_cache.SUPPORTED
    for cid in {c.id for f in manifest.files for c in f.chunks}:
        ok = ws.repo.chunks.evict(cid) and ok
    return ok


def warm_version(ws: Workspace, ref: str, ctx: JobContext | None = None) -> int:
    """Read every piece of a version once so the next load comes from memory; bytes read."""
    ctx = ctx or JobContext()
    manifest = ws.repo.resolve(ref)
    chunk_ids = list(dict.fromkeys(c.id for f in manifest.files for c in f.chunks))
    total = 0
    for n, cid in enumerate(chunk_ids, 1):
        ctx.check()
        total += sum(page_cache.prefetch(p) for _d, p in ws.repo.chunks.piece_files(cid))
        ctx.report(n, len(chunk_ids), f"{manifest.ref}: warming")
    return total


def load_version(
    ws: Workspace, ref: str, *, strategy: str | None = None, threads: int | None = None,
    cold: bool = False, ctx: JobContext | None = None,
) -> LoadResult:  # fmt: skip
    """Load the version ``ref`` names into memory (see the module text); ``cold`` empties the
    page cache of its chunks first, so the time includes reading the devices."""
    ctx = ctx or JobContext()
    manifest = ws.repo.resolve(ref)
    if cold:
        evict_version(ws, manifest)
    files: dict[str, LoadedFile] = {}
    started = time.perf_counter()
    with Fetcher(ws, manifest, ctx, threads=threads, strategy=strategy) as fetcher:
        for f in manifest.files:
            data = np.empty(f.size, np.uint8)

            def into(at: int, plain: BytesLike, data: np.ndarray[Any, Any] = data) -> None:
                data[at : at + len(plain)] = np.frombuffer(plain, np.uint8)

            fetcher.fetch(f, into, memoryview(data.data))
            files[f.path] = LoadedFile(f.path, data, _views(f, data))
    seconds = time.perf_counter() - started
    return LoadResult(manifest, files, seconds, fetcher.device_bytes, fetcher.degraded)
