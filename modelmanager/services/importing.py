"""Import files and folders as a new version of a model.

Every input is read and validated before the first byte is stored, so bad input leaves the
repository untouched. Then, under the writer lock, each file is read once, in order, into a
small pool of reused buffers; a thread pool hashes, deduplicates, compresses and writes the
chunks (zstandard, blake3 and file I/O release the GIL), while this thread digests tensors.
Memory in flight is bounded by the pool. Chunks are flushed, then the manifest is written,
then labels, then the catalog row: a crash at any point leaves no partial version.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from modelmanager.core.chunks.plan import Range, plan_chunks
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.faults import crash_point
from modelmanager.core.formats import DtypeHints, FileIndex, index_file
from modelmanager.core.formats.jsonstrict import loads_strict
from modelmanager.core.ids import DIGEST_HEX_LEN, content_id, new_hasher
from modelmanager.core.jobs import JobContext
from modelmanager.core.localfiles import Listed, list_input, open_regular
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest, TensorRecord
from modelmanager.core.repo.names import check_label, check_model_name, check_relpath
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT, manifest_key, utc_now
from modelmanager.errors import UserError
from modelmanager.services import Changes, Workspace

#: Folders never imported from a model folder (version-control internals).
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})


def default_workers() -> int:
    """Threads for chunk work: two per core (capped at 8), so fsync waits overlap compute."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class SourceFile:
    """A file to import: where it is, the name it gets in the version, what it holds."""

    relpath: str
    path: Path
    size: int
    mtime_ns: int
    index: FileIndex
    identity: tuple[int, int] = (0, 0)  # (device, inode) when listed; checked on every open


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    manifest: Manifest
    files: int
    logical_bytes: int
    chunks: int
    new_chunks: int
    new_stored_bytes: int
    changes: Changes
    device_problems: dict[str, str] = field(default_factory=dict)


def collect_files(
    paths: Sequence[Path],
    names: Mapping[Path, str] | None = None,
    *,
    symlinks: str = "inside",
    confine: Path | None = None,
) -> list[Listed]:
    """Every regular file to import, sorted by name; see :mod:`modelmanager.core.localfiles`.

    A file keeps its own name (or the one ``names`` gives it: an Ollama blob becomes
    ``model.gguf``); a folder contributes its files with names relative to it. ``symlinks``
    is the rule for links (inside, follow, refuse); ``confine`` the root links must stay in
    when it is not the folder named (adopt gives the store's folder).
    """
    if not paths:
        raise UserError("nothing to import: give at least one file or folder")
    found: dict[str, Listed] = {}
    for root in paths:
        root = Path(root)
        entries = list_input(root, rule=symlinks, name=(names or {}).get(root), confine=confine,
                             skip=SKIPPED_DIRS)  # fmt: skip
        for entry in entries:
            try:
                check_relpath(entry.relpath)
            except ValueError:
                raise UserError("file name cannot be stored portably", path=entry.path) from None
            if entry.relpath in found:
                raise UserError(
                    f"two inputs would both be stored as {entry.relpath!r} "
                    f"({found[entry.relpath].path} and {entry.path}); import them as separate "
                    "models",
                    path=entry.path,
                )
            found[entry.relpath] = entry
    if not found:
        raise UserError("nothing to import: the folders hold no files", path=paths[0])
    return [found[k] for k in sorted(found)]


def scan_sources(
    paths: Sequence[Path],
    names: Mapping[Path, str] | None = None,
    *,
    symlinks: str = "inside",
    confine: Path | None = None,
) -> list[SourceFile]:
    """Collect and parse every input; any bad file raises before anything is stored."""
    return [
        SourceFile(
            f.relpath,
            f.path,
            f.size,
            f.mtime_ns,
            index_file(f.path, f.size, f.identity),
            f.identity,
        )
        for f in collect_files(paths, names, symlinks=symlinks, confine=confine)
    ]


def derive_metadata(sources: Iterable[SourceFile]) -> dict[str, Any]:
    """Model facts read from the inputs: architecture and framework from config.json, params."""
    meta: dict[str, Any] = {}
    params = 0
    for src in sources:
        params += sum(t.numel for t in src.index.tensors)
        if src.index.format == "safetensors" and src.index.metadata.get("format") == "pt":
            meta.setdefault("framework", "pytorch")
        if src.index.format == "pytorch":
            meta.setdefault("framework", "pytorch")
        if src.index.format == "gguf":
            meta.setdefault("framework", "gguf")
            for key, name in (("general.architecture", "architecture"), ("general.name", "name"),
                              ("general.file_type", "gguf_file_type")):  # fmt: skip
                if key in src.index.metadata:
                    meta.setdefault(name, src.index.metadata[key])
        if src.index.format == "hdf5" and "keras_version" in src.index.metadata:
            meta.setdefault("framework", "keras")
        if src.index.format == "onnx":
            meta.setdefault("framework", "onnx")
            meta.setdefault("opset", src.index.metadata.get("opset", ""))
        if src.relpath == "config.json" and src.size <= 16 * 1024 * 1024:
            try:
                with open_regular(src.path, src.identity) as f:
                    config = loads_strict(f.read(src.size))
            except (OSError, ValueError):
                continue  # a broken config.json is stored as it is; it only adds no facts
            if not isinstance(config, dict):
                continue
            archs = config.get("architectures")
            if isinstance(archs, list) and archs and isinstance(archs[0], str):
                meta["architecture"] = archs[0]
            for key in ("model_type", "torch_dtype"):
                if isinstance(config.get(key), str):
                    meta[key] = config[key]
            if "transformers_version" in config:
                meta["framework"] = "transformers"
            for key in ("num_parameters", "n_params"):
                if type(config.get(key)) is int:
                    meta["config_parameters"] = config[key]
    if params:
        meta["parameters"] = params
    return meta


class _ChunkWriter:
    """Hashes, deduplicates and stores chunks on a thread pool, one buffer per chunk in flight."""

    def __init__(
        self, ws: Workspace, settings: CodecSettings, policy: Policy, workers: int
    ) -> None:
        self.chunks = ws.repo.chunks
        self.settings = settings
        self.policy = policy
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="mm-import")
        self.window = workers * 2
        self.chunk_size = ws.repo.config.chunk_size
        self._free: list[bytearray] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.new_chunks = 0
        self.new_bytes = 0

    def buffer(self) -> bytearray:
        return self._free.pop() if self._free else bytearray(self.chunk_size)

    def release(self, buf: bytearray) -> None:
        self._free.append(buf)

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


class _TensorDigests:
    """Digests of every tensor's bytes, fed chunk by chunk in file order.

    A tensor that is exactly one chunk takes the chunk's id (the same hash of the same bytes),
    so only tensors that share or span chunks are hashed a second time.
    """

    EMPTY = content_id(b"")[:DIGEST_HEX_LEN]

    def __init__(self, index: FileIndex) -> None:
        self.tensors = sorted(index.tensors, key=lambda t: (t.start, t.end))
        self.digests = [self.EMPTY if t.start == t.end else "" for t in self.tensors]
        self.pending = [i for i, t in enumerate(self.tensors) if t.start < t.end]
        self.next = 0
        self.open: dict[int, Any] = {}
        self.whole: dict[int, int] = {}  # tensor -> number of the chunk that is exactly it

    def feed(self, chunk_no: int, start: int, data: memoryview) -> None:
        end = start + len(data)
        while self.next < len(self.pending) and self.tensors[self.pending[self.next]].start < end:
            i = self.pending[self.next]
            self.next += 1
            t = self.tensors[i]
            if (t.start, t.end) == (start, end):
                self.whole[i] = chunk_no
            else:
                self.open[i] = new_hasher()
        for i in list(self.open):
            t = self.tensors[i]
            self.open[i].update(data[max(t.start, start) - start : min(t.end, end) - start])
            if t.end <= end:
                self.digests[i] = self.open.pop(i).hexdigest()[:DIGEST_HEX_LEN]

    def records(self, chunk_ids: list[str]) -> tuple[TensorRecord, ...]:
        for i, chunk_no in self.whole.items():
            self.digests[i] = chunk_ids[chunk_no][:DIGEST_HEX_LEN]
        return tuple(
            TensorRecord(t.name, t.dtype, t.shape, t.start, t.end, d)
            for t, d in zip(self.tensors, self.digests, strict=True)
        )


def _read_exact(f: BinaryIO, view: memoryview, src: SourceFile) -> None:
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            raise UserError("file shrank while it was being imported; try again", path=src.path)
        got += n


def _chunk_ranges(ws: Workspace, src: SourceFile) -> list[Range]:
    """The (start, end) of each chunk of ``src``, as this repository cuts it."""
    config = ws.repo.config
    return plan_chunks(src.size, src.index.chunk_regions(), chunk_size=config.chunk_size,
                       group_size=config.group_size)  # fmt: skip


def _import_file(
    src: SourceFile, writer: _ChunkWriter, ws: Workspace, ctx: JobContext, done: list[int],
    total: int,
) -> FileRecord:  # fmt: skip
    ranges = _chunk_ranges(ws, src)
    digests = _TensorDigests(src.index)
    hints = DtypeHints(src.index)
    ids: list[str] = []
    inflight: deque[tuple[Future[tuple[str, int]], bytearray, int]] = deque()

    def settle_one() -> None:
        fut, buf, length = inflight.popleft()
        cid, _stored = fut.result()
        writer.release(buf)
        ids.append(cid)
        done[0] += length
        ctx.report(done[0], total, src.relpath)

    try:
        with open_regular(src.path, src.identity, buffering=0) as f:
            st = os.fstat(f.fileno())
            if (st.st_size, st.st_mtime_ns) != (src.size, src.mtime_ns):
                raise UserError("file changed since it was checked; try again", path=src.path)
            for chunk_no, (start, end) in enumerate(ranges):
                ctx.check()
                if len(inflight) >= writer.window:
                    settle_one()
                buf = writer.buffer()
                view = memoryview(buf)[: end - start]
                _read_exact(f, view, src)
                digests.feed(chunk_no, start, view)
                hint = hints.of(start, end)
                inflight.append((writer.pool.submit(writer.store, view, hint), buf, end - start))
            while inflight:
                settle_one()
            if f.read(1):  # more than its size: still being written, or a /proc-like file
                raise UserError("holds more bytes than its size says (still being written?); "
                                "try again", path=src.path)  # fmt: skip
            st = os.fstat(f.fileno())
            if (st.st_size, st.st_mtime_ns) != (src.size, src.mtime_ns):
                raise UserError(
                    "file changed while it was being imported; try again", path=src.path
                )
    except OSError as e:
        raise UserError(f"cannot read file ({e.strerror or e})", path=src.path) from None
    finally:
        for fut, _buf, _len in inflight:
            fut.cancel()
        for fut, _buf, _len in inflight:
            if not fut.cancelled():
                fut.exception()  # wait: the buffer must not be reused while a thread reads it
    chunks = tuple(ChunkRef(cid, e - s) for cid, (s, e) in zip(ids, ranges, strict=True))
    return FileRecord(
        src.relpath, src.size, src.index.format, chunks, digests.records(ids),
        dict(src.index.metadata),
    )  # fmt: skip


def _check_room(ws: Workspace, sources: list[SourceFile], policy: Policy, ctx: JobContext) -> None:
    """Refuse an import that cannot fit, before anything is written.

    The sizes times the policy's overhead bound what it can need (no compression, nothing
    deduplicated). Only when that bound does not fit are the chunks hashed (BLAKE3, without
    storing) to count what is really new; that count, still uncompressed, is what is checked.
    """
    chunks = ws.repo.chunks
    total, _summary = chunks.room()
    bound = sum(s.size for s in sources) * policy.overhead
    if total is None or bound <= total:
        return
    new = 0
    seen: set[str] = set()
    for src in sources:
        try:
            with open_regular(src.path, src.identity) as f:
                for start, end in _chunk_ranges(ws, src):
                    ctx.check()
                    f.seek(start)
                    cid = content_id(f.read(end - start))
                    if cid not in seen and not chunks.has(cid, policy):
                        new += end - start
                    seen.add(cid)
        except OSError as e:
            raise UserError(f"cannot read file ({e.strerror or e})", path=src.path) from None
    chunks.require_room(int(new * policy.overhead), f"this import ({len(sources)} files)")


def import_paths(
    ws: Workspace,
    paths: Sequence[Path],
    model: str,
    *,
    message: str = "",
    labels: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
    codec: CodecSettings | None = None,
    ctx: JobContext | None = None,
    workers: int | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    names: Mapping[Path, str] | None = None,
    symlinks: str = "inside",
    confine: Path | None = None,
) -> ImportResult:
    """Import ``paths`` as the next version of ``model``; see the module docstring.

    ``names`` stores given files under other names (relative paths) than their own;
    ``symlinks`` and ``confine`` say which links are followed (see :func:`collect_files`)."""
    ctx = ctx or JobContext()
    check_model_name(model)
    labels = tuple(dict.fromkeys(check_label(label) for label in labels))
    sources = scan_sources(paths, names, symlinks=symlinks, confine=confine)
    meta = derive_metadata(sources)
    meta.update(metadata or {})
    repo = ws.repo
    total = sum(s.size for s in sources)
    with repo.writer(lock_timeout):
        existing = repo.existing_model_name(model)
        if existing is not None and existing != model:
            raise UserError(f"a model named {existing!r} exists; names may not differ only in case")
        seqs = repo.version_numbers(model)
        policy = repo.policy_for(model)
        repo.chunks.refresh()
        settings = codec or repo.codec_for(model)
        _check_room(ws, sources, policy, ctx)
        writer = _ChunkWriter(ws, settings, policy, workers or default_workers())
        done = [0]
        try:
            files = tuple(_import_file(s, writer, ws, ctx, done, total) for s in sources)
        finally:
            writer.close()
        ctx.check()
        repo.chunks.flush()
        manifest = Manifest(
            model=model,
            seq=repo.next_seq(model),
            parent=seqs[-1] if seqs else None,
            created=utc_now(),
            message=message,
            metadata=meta,
            files=files,
        )
        size = repo.commit_version(manifest, labels)
        ws.catalog.add_version(manifest_key(model, manifest.seq), manifest, size)
        crash_point("after-catalog")
    return ImportResult(
        manifest=manifest,
        files=len(files),
        logical_bytes=manifest.logical_bytes,
        chunks=sum(len(f.chunks) for f in files),
        new_chunks=writer.new_chunks,
        new_stored_bytes=writer.new_bytes,
        changes=Changes(frozenset({model}), (manifest.ref,), storage=writer.new_chunks > 0),
        device_problems=repo.chunks.write_problems(),
    )
