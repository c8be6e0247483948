"""What a read-only mount shows, and its file reads: ``MODEL/@N/`` folders holding each version's
original files, ``MODEL/latest`` and ``MODEL/LABEL`` pointing at them, read on demand.

No FUSE here (``services.mount_fuse`` binds this to libfuse): :class:`MountView` answers "what
is at this path" and :meth:`MountView.read` gives a file's bytes at an offset. Bytes come from
the chunks through the load's fetcher (:class:`modelmanager.services.loading.Fetcher`: any
copy, any device, rebuilt from parity and verified against its hash, as export reads), kept in a
bounded LRU cache of decoded chunks (chunk ids are content hashes, so versions share entries).
A read that continues the previous chunk reads ahead, so a sequential read keeps every device
and decode thread busy.

``latest`` and labels are symbolic links to ``@N``: a version never changes, so a file's bytes
under ``@N`` may stay in the kernel's page cache for as long as the mount lasts, while a label
that moves points elsewhere instead of changing a file's content under its name.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest
from modelmanager.errors import NotFoundError
from modelmanager.services import Workspace
from modelmanager.services.loading import Fetcher

#: Decoded chunks kept in memory by default (the kernel's page cache keeps what was read too).
DEFAULT_CACHE_BYTES = 256 << 20
#: How far a sequential read reads ahead of the reader, at most (and at most half the cache).
READ_AHEAD_BYTES = 64 << 20
#: How often the model, version and label lists are read again (new versions show up).
REFRESH_SECONDS = 2.0
#: Versions whose file tree is kept (a manifest of 100,000 tensors takes a second to read).
KEPT_VERSIONS = 32
LATEST = "latest"


@dataclass(frozen=True)
class Dir:
    """A folder: its entries' names."""

    names: tuple[str, ...]
    mtime: float


@dataclass(frozen=True)
class Link:
    """A symbolic link (``latest`` and labels, to ``@N``)."""

    target: str
    mtime: float


@dataclass(frozen=True)
class File:
    """One file of a version, with where each chunk starts in it."""

    manifest: Manifest
    record: FileRecord
    starts: tuple[int, ...]
    mtime: float

    @property
    def size(self) -> int:
        return self.record.size

    @property
    def name(self) -> str:
        return f"{self.manifest.ref}/{self.record.path}"


Node = Dir | Link | File


def _stamp(created: str) -> float:
    """A manifest's ISO creation time as seconds since the epoch (0 when unreadable)."""
    try:
        return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


@dataclass
class _Version:
    """A version's files and folders, by path inside the version."""

    mtime: float
    files: dict[str, File] = field(default_factory=dict)
    dirs: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, m: Manifest) -> _Version:
        mtime = _stamp(m.created)
        v = cls(mtime, dirs={"": set()})
        for f in m.files:
            starts, at = [], 0
            for ref in f.chunks:
                starts.append(at)
                at += ref.length
            v.files[f.path] = File(m, f, tuple(starts), mtime)
            parts = f.path.split("/")
            for i in range(len(parts)):
                v.dirs.setdefault("/".join(parts[:i]), set()).add(parts[i])
        return v


@dataclass
class _Listing:
    """What was read at ``at`` (monotonic): the model names and the folders their parts make,
    or one model's versions and labels."""

    at: float
    models: frozenset[str] = frozenset()
    folders: dict[str, set[str]] = field(default_factory=dict)
    seqs: tuple[int, ...] = ()
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Run:
    """Some chunks of a file, fetched as one (what ``Fetcher.fetch`` takes)."""

    chunks: tuple[ChunkRef, ...]


class ChunkCache:
    """Decoded chunks by id, least recently used dropped first past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.size = 0
        self._items: OrderedDict[str, BytesLike] = OrderedDict()

    def get(self, cid: str) -> BytesLike | None:
        data = self._items.get(cid)
        if data is not None:
            self._items.move_to_end(cid)
        return data

    def __contains__(self, cid: str) -> bool:
        return cid in self._items

    def put(self, cid: str, data: BytesLike) -> None:
        if cid in self._items or len(data) > self.limit:
            return
        self._items[cid] = data
        self.size += len(data)
        while self.size > self.limit:
            _old, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)


class MountView:
    """A repository as folders and files: paths to nodes, and file reads (thread-safe)."""

    def __init__(
        self, ws: Workspace, *, cache_bytes: int = DEFAULT_CACHE_BYTES,
        read_ahead: int = READ_AHEAD_BYTES, refresh: float = REFRESH_SECONDS,
        threads: int | None = None,
    ) -> None:  # fmt: skip
        self.ws = ws
        self.cache = ChunkCache(cache_bytes)
        self.read_ahead = min(read_ahead, cache_bytes // 2)
        self.refresh = refresh
        self.threads = threads
        self.started = time.time()
        self.degraded = 0
        self._lock = threading.Lock()  # the cache, pending reads and versions
        self._meta = threading.Lock()  # one reader of the repository's lists at a time
        self._listings: dict[str, _Listing] = {}
        self._versions: OrderedDict[tuple[str, int], _Version] = OrderedDict()
        self._pending: dict[str, Future[BytesLike]] = {}
        self._fetchers: dict[str, Fetcher] = {}
        self._pool = ThreadPoolExecutor(4, "mm-mount")
        self._closed = False

    # -- what is where ------------------------------------------------------------------

    def _fresh(self, key: str, read: Callable[[], _Listing]) -> _Listing:
        """The listing kept under ``key`` ("" for the models), read again by ``read`` when
        older than ``refresh`` (only when asked for: an idle mount reads nothing)."""
        found = self._listings.get(key)
        if found is not None and time.monotonic() - found.at < self.refresh:
            return found
        with self._meta:
            found = self._listings.get(key)
            if found is None or time.monotonic() - found.at >= self.refresh:
                found = self._listings[key] = read()
        return found

    def models(self) -> _Listing:
        """Every model's name, and the folders the parts of the names make."""

        def read() -> _Listing:
            names = frozenset(self.ws.repo.model_names())
            folders: dict[str, set[str]] = {"": set()}
            for model in names:
                parts = model.split("/")
                for i in range(len(parts)):
                    folders.setdefault("/".join(parts[:i]), set()).add(parts[i])
            return _Listing(time.monotonic(), names, folders)

        return self._fresh("", read)

    def versions(self, model: str) -> _Listing:
        """The versions of ``model`` and its labels (those that name one of them)."""

        def read() -> _Listing:
            seqs = self.ws.repo.version_numbers(model)
            labels = {k: v for k, v in self.ws.repo.read_labels(model).items() if v in seqs}
            return _Listing(time.monotonic(), seqs=tuple(seqs), labels=labels)

        return self._fresh(f"/{model}", read)

    def _version(self, model: str, seq: int) -> _Version:
        key = (model, seq)
        with self._lock:
            found = self._versions.get(key)
            if found is not None:
                self._versions.move_to_end(key)
                return found
        made = _Version.of(self.ws.repo.read_manifest(model, seq))
        with self._lock:
            self._versions[key] = made
            while len(self._versions) > KEPT_VERSIONS:
                self._versions.popitem(last=False)
        return made

    def node(self, path: str) -> Node:
        """What is at ``path`` ('/' separated, from the mount's root); NotFoundError if
        nothing is."""
        parts = [p for p in path.split("/") if p]
        models = self.models()
        for i in range(1, len(parts)):
            model = "/".join(parts[:i])
            if model not in models.models:
                continue
            listing = self.versions(model)
            entry, rest = parts[i], parts[i + 1 :]
            seq = _entry_version(entry, listing.seqs, listing.labels)
            if seq is None:
                continue
            if not entry.startswith("@"):
                if rest:  # the kernel follows links itself; a path through one is no path
                    break
                return Link(f"@{seq}", self.started)
            return self._in_version(model, seq, "/".join(rest), path)
        folder = "/".join(parts)
        entries = set(models.folders.get(folder, ()))
        if folder in models.models and (listing := self.versions(folder)).seqs:
            entries.update(f"@{n}" for n in listing.seqs)
            entries.add(LATEST)
            entries.update(listing.labels)
        elif folder not in models.folders:
            raise NotFoundError("no such file in the mount", path=path)
        return Dir(tuple(sorted(entries)), self.started)

    def _in_version(self, model: str, seq: int, inner: str, path: str) -> Node:
        version = self._version(model, seq)
        found = version.files.get(inner)
        if found is not None:
            return found
        names = version.dirs.get(inner)
        if names is None:
            raise NotFoundError("no such file in the mount", path=path)
        return Dir(tuple(sorted(names)), version.mtime)

    # -- reading ------------------------------------------------------------------------

    def read(self, f: File, offset: int, size: int) -> BytesLike:
        """Up to ``size`` bytes of ``f`` from ``offset`` (fewer at its end): a view of the
        cached chunk when they lie in one (no copy; the cache never changes a chunk's bytes)."""
        end = min(f.size, offset + size)
        if offset >= end:
            return b""
        refs = f.record.chunks
        j = bisect.bisect_right(f.starts, offset) - 1
        pieces: list[memoryview] = []
        while j < len(refs) and f.starts[j] < end:
            data = self._chunk(f.manifest, refs, j)
            start = f.starts[j]
            lo, hi = max(offset, start) - start, min(end, start + len(data)) - start
            pieces.append(memoryview(data)[lo:hi])
            j += 1
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _chunk(self, m: Manifest, refs: Sequence[ChunkRef], j: int) -> BytesLike:
        """Chunk ``j`` of a file, decoded: from the cache, a read already under way, or a
        new read; a read that follows the previous chunk also starts reading ahead."""
        cid = refs[j].id
        batch: list[ChunkRef] = []
        ahead: list[ChunkRef] = []
        with self._lock:
            data = self.cache.get(cid)
            if data is not None:
                waiting = None
            else:
                waiting = self._pending.get(cid)
                if waiting is None:
                    waiting = self._pending[cid] = Future()
                    batch.append(refs[j])
            if j == 0 or refs[j - 1].id in self.cache or refs[j - 1].id in self._pending:
                budget, k = self.read_ahead, j + 1
                while k < len(refs) and budget > 0:
                    ref = refs[k]
                    budget -= ref.length
                    k += 1
                    if ref.id not in self.cache and ref.id not in self._pending:
                        self._pending[ref.id] = Future()
                        ahead.append(ref)
        for run in (batch, ahead):
            if run:
                self._submit(m, run)
        if waiting is None:
            assert data is not None
            return data
        return waiting.result()

    def _submit(self, m: Manifest, run: list[ChunkRef]) -> None:
        try:
            self._pool.submit(self._fetch, m, run)
        except RuntimeError as e:  # closing: nobody will read these
            self._fail(run, e)

    def _fetcher(self, m: Manifest) -> Fetcher:
        """One fetcher per model (its policy decides how chunks are rebuilt)."""
        with self._lock:
            found = self._fetchers.get(m.model)
            if found is None:
                if self._closed:
                    raise RuntimeError("the mount is closing")
                found = self._fetchers[m.model] = Fetcher(self.ws, m, JobContext(),
                                                          threads=self.threads)  # fmt: skip
            return found

    def _fetch(self, m: Manifest, run: list[ChunkRef]) -> None:
        """Fetch ``run`` (chunks of one file), each put in the cache and handed to whoever
        waits for it as it arrives."""
        unique = list({ref.id: ref for ref in run}.values())
        at_offset, at = {}, 0
        for ref in unique:
            at_offset[at] = ref.id
            at += ref.length

        def arrived(offset: int, data: BytesLike) -> None:
            # kept as handed over, no copy (see Sink); as bytes, whatever the buffer's format
            self._done(at_offset[offset], memoryview(data).cast("B"))

        try:
            fetcher = self._fetcher(m)
            before = fetcher.degraded
            fetcher.fetch(_Run(tuple(unique)), arrived)
            with self._lock:
                self.degraded += fetcher.degraded - before
        except BaseException as e:  # every waiter gets the error (it becomes EIO there)
            self._fail(unique, e)

    def _done(self, cid: str, data: BytesLike) -> None:
        with self._lock:
            self.cache.put(cid, data)
            waiting = self._pending.pop(cid, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(data)

    def _fail(self, run: Sequence[ChunkRef], error: BaseException) -> None:
        with self._lock:
            failed = [self._pending.pop(ref.id, None) for ref in run]
        for waiting in failed:
            if waiting is not None and not waiting.done():
                waiting.set_exception(error)

    def close(self) -> None:
        """Stop reading: pending reads fail, every pool ends."""
        with self._lock:
            self._closed = True
            fetchers = list(self._fetchers.values())
        self._pool.shutdown(wait=True, cancel_futures=True)
        for fetcher in fetchers:
            fetcher.close()
        self._fail([ChunkRef(cid, 0) for cid in list(self._pending)], RuntimeError("closed"))


def _entry_version(entry: str, seqs: tuple[int, ...], labels: dict[str, int]) -> int | None:
    """The version a model folder's entry names (``@N``, ``latest``, a label), else None."""
    if entry.startswith("@"):
        digits = entry[1:]
        if digits.isdigit() and int(digits) in seqs:
            return int(digits)
        return None
    if entry == LATEST:
        return seqs[-1] if seqs else None
    return labels.get(entry)
