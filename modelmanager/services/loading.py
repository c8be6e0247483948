"""Load a version fast: the chunk read pipeline (:mod:`modelmanager.core.chunks.fetch`) set up
with the workspace's policy and best measured read strategy.

Export (to a folder) uses the same fetcher with a file sink; :func:`load_version` loads into
memory: one buffer per file, with numpy views of each tensor for safetensors and .npy files.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelmanager.core.catalog import best_strategy, device_speeds
from modelmanager.core.chunks import fetch
from modelmanager.core.chunks.fetch import Sink as Sink  # re-exported: services.stores uses it
from modelmanager.core.chunks.selection import WEIGHTED, Selector
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import FileRecord, Manifest
from modelmanager.core.storage import page_cache
from modelmanager.services import Changes, Workspace
from modelmanager.services.tensors import numpy_dtype

#: The strategy used when the user names none and no benchmark has measured one better: spread
#: reads in proportion to each device's measured speed (see docs/benchmarks.md, load).
DEFAULT_STRATEGY = WEIGHTED


class Fetcher(fetch.Fetcher):
    """The core fetcher (:class:`modelmanager.core.chunks.fetch.Fetcher`) set up for one
    version of a workspace: its model's policy, progress in the version's bytes, and copies
    picked with the strategy given (else the best measured: :func:`selector_for`)."""

    def __init__(
        self, ws: Workspace, manifest: Manifest, ctx: JobContext, *,
        threads: int | None = None, strategy: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(
            ws.repo.chunks, ws.repo.policy_for(manifest.model), ctx,
            total=manifest.logical_bytes, text=manifest.ref, threads=threads,
            selector=selector_for(ws, strategy),
        )  # fmt: skip


# -- loading into memory ---------------------------------------------------------------

#: Formats whose tensors are plain contiguous arrays at their recorded byte ranges (every
#: indexed format's arrays: :mod:`modelmanager.services.tensors`, which mm.load uses).
ARRAY_FORMATS = ("safetensors", "npy")


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
    """What a load read, how long it took and from which devices (into memory: ``changes``
    is empty, nothing in the repository changed)."""

    manifest: Manifest
    files: dict[str, LoadedFile]
    seconds: float
    device_bytes: dict[str, int]
    degraded_chunks: int = 0
    changes: Changes = field(default_factory=Changes)

    def to_json(self) -> dict[str, Any]:
        """The version (keys as ``log`` names them: ``tensors`` is its count), its bytes, time,
        and where they came from; ``arrays``: the tensors loaded as numpy arrays (safetensors
        and .npy; a GGUF version has tensors but no arrays)."""
        m = self.manifest
        return {"ref": m.ref, "model": m.model, "version": m.seq, "bytes": self.bytes,
                "seconds": round(self.seconds, 4), "bytes_per_second": round(self.throughput),
                "device_bytes": dict(sorted(self.device_bytes.items())),
                "tensors": sum(len(f.tensors) for f in m.files),
                "arrays": len(self.arrays()), "degraded_chunks": self.degraded_chunks}  # fmt: skip

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
        dtype = numpy_dtype(t.dtype)
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


@dataclass(frozen=True)
class WarmResult:
    """What keeping a version warm read into the page cache (``changes`` is empty: nothing in
    the repository changed)."""

    manifest: Manifest
    bytes_read: int
    changes: Changes = field(default_factory=Changes)

    def to_json(self) -> dict[str, Any]:
        """The version (keys as ``log`` names them) and the stored bytes read."""
        m = self.manifest
        return {"ref": m.ref, "model": m.model, "version": m.seq, "bytes_read": self.bytes_read}


def warm(ws: Workspace, ref: str, ctx: JobContext | None = None) -> WarmResult:
    """Read every piece of a version once so the next load comes from memory."""
    ctx = ctx or JobContext()
    manifest = ws.repo.resolve(ref)
    chunk_ids = list(dict.fromkeys(c.id for f in manifest.files for c in f.chunks))
    total = 0
    ctx.unit = "chunk"
    for n, cid in enumerate(chunk_ids, 1):
        ctx.check()
        total += sum(page_cache.prefetch(p) for _d, p in ws.repo.chunks.piece_files(cid))
        ctx.report(n, len(chunk_ids), f"{manifest.ref}: warming")
    return WarmResult(manifest, total)


def warm_version(ws: Workspace, ref: str, ctx: JobContext | None = None) -> int:
    """The bytes :func:`warm` read (the window's keep-warm action still takes a number)."""
    return warm(ws, ref, ctx).bytes_read


def load_version(
    ws: Workspace, ref: str | Manifest, *, strategy: str | None = None, threads: int | None = None,
    cold: bool = False, ctx: JobContext | None = None, paths: Collection[str] | None = None,
) -> LoadResult:  # fmt: skip
    """Load the version ``ref`` names into memory (see the module text); ``cold`` empties the
    page cache of its chunks first, so the time includes reading the devices. ``paths``, when
    given, loads only those files (``files`` then holds only them). ``ref`` may be the
    manifest itself, already resolved (the Python API's: not read twice)."""
    ctx = ctx or JobContext()
    manifest = ref if isinstance(ref, Manifest) else ws.repo.resolve(ref)
    wanted = [f for f in manifest.files if paths is None or f.path in paths]
    if cold:
        evict_version(ws, manifest)
    files: dict[str, LoadedFile] = {}
    started = time.perf_counter()
    with Fetcher(ws, manifest, ctx, threads=threads, strategy=strategy) as fetcher:
        for f in wanted:
            data = np.empty(f.size, np.uint8)

            def into(at: int, plain: BytesLike, data: np.ndarray[Any, Any] = data) -> None:
                data[at : at + len(plain)] = np.frombuffer(plain, np.uint8)

            fetcher.fetch(f, into, memoryview(data.data))
            files[f.path] = LoadedFile(f.path, data, _views(f, data))
    seconds = time.perf_counter() - started
    return LoadResult(manifest, files, seconds, fetcher.device_bytes, fetcher.degraded)
