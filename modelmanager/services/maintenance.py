"""Keeping a repository honest: verify, garbage collection, reindex, statistics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmanager.core.catalog import SyncResult
from modelmanager.core.catalog.content import Sizes, Totals, ratio
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.chunks.store import ChunkMissing, chunk_key
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import Device
from modelmanager.core.redundancy.health import in_window
from modelmanager.core.redundancy.table import ChunkTable, Needed
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.errors import IntegrityError, ModelManagerError
from modelmanager.services import Changes, Workspace
from modelmanager.services.pinning import hot_bytes, hot_garbage
from modelmanager.services.safety import (
    MISSING_SHARE,
    refuse_missing,
    refuse_on_doubt,
    reporting,
)


@dataclass(frozen=True)
class Problem:
    """One finding of verify: what kind, which object, why, and the versions it affects."""

    kind: str  # "missing" | "corrupt" | "manifest" | "label"
    subject: str
    detail: str
    versions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail,
                "versions": list(self.versions)}  # fmt: skip


@dataclass(frozen=True)
class VerifyReport:
    """Everything verify checked and everything it found."""

    versions: int
    chunks: int
    bytes: int
    problems: tuple[Problem, ...]
    transient: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "versions": self.versions, "chunks": self.chunks,
                "bytes": self.bytes, "transient": list(self.transient),
                "problems": [p.to_json() for p in self.problems]}  # fmt: skip


def _stream_manifests(
    ws: Workspace, ref: str | None, problems: list[Problem] | None
) -> Iterator[Manifest]:
    """The manifest of ``ref``, or every readable one, one at a time; an unreadable one is
    added to ``problems`` (when given) and skipped."""
    if ref is not None:
        yield ws.repo.resolve(ref)
        return
    for key, _size in ws.repo.manifest_keys():
        try:
            yield ws.repo.read_manifest_key(key)
        except ModelManagerError as e:
            if problems is not None:
                problems.append(Problem("manifest", key, e.message))


def _check_labels(ws: Workspace, model: str) -> list[Problem]:
    seqs = set(ws.repo.version_numbers(model))
    return [
        Problem("label", f"{model}@{label}", f"points at version {seq}, which does not exist")
        for label, seq in ws.repo.read_labels(model).items()
        if seq not in seqs
    ]


def _check_chunk(chunks: PlacedChunkStore, cid: str, length: int, quick: bool) -> None:
    if not quick:
        chunks.get(cid, length)
    elif chunks.header(cid).length != length:
        raise IntegrityError("recorded length differs from the manifest", path=chunk_key(cid))


def verify(
    ws: Workspace, ref: str | None = None, *, quick: bool = False, ctx: JobContext | None = None
) -> VerifyReport:
    """Check every chunk a version (or every version) needs; never raises for what it finds.

    ``quick`` checks presence and recorded sizes only; the full check decodes every chunk and
    compares its hash. A chunk that fails is read once more before it is called corrupt.
    """
    ctx = ctx or JobContext()
    # One pass over the manifests notes each chunk reference in a table on disk: memory
    # holds a manifest at a time and a window of checks, never every chunk; the versions
    # using a chunk are looked up for problems alone.
    problems: list[Problem] = []
    with ChunkTable() as table:
        table.add_manifests(_stream_manifests(ws, ref, problems))
        versions = len(table.refs)
        models = set(table.models)
        for model in sorted(models if ref else set(ws.repo.model_names())):
            problems.extend(_check_labels(ws, model))
        if ref is None:  # every copy of every metadata record: damaged, missing, stale, off-journal
            problems.extend(Problem("metadata", p.path, p.what)
                            for p in ws.repo.metadata_problems(copies=True))  # fmt: skip
        count, total = table.totals()
        chunks = ws.repo.chunks

        def check(need: Needed) -> tuple[Needed, str, str, bool]:
            """(the chunk, problem kind or "", detail, passed only when read again)."""
            cid, length = need.chunk_id, need.length
            try:
                _check_chunk(chunks, cid, length, quick)
            except ChunkMissing as e:
                return need, "missing", e.message, False
            except IntegrityError:
                try:  # read once more before calling it corrupt: the first failure may be transient
                    _check_chunk(chunks, cid, length, quick)
                except IntegrityError as e:
                    return need, "corrupt", e.message, False
                return need, "", "", True
            return need, "", "", False

        done = 0
        transient = []
        found: list[tuple[str, str, str]] = []
        for need, kind, detail, was_transient in in_window(check, table.needed(), "mm-verify",
                                                            ctx):  # fmt: skip
            done += need.length
            ctx.report(done, total, need.chunk_id[:12])
            if was_transient:
                transient.append(need.chunk_id)
            if kind:
                found.append((need.chunk_id, kind, detail))
    users = _users(ws, ref, {cid for cid, _k, _d in found})
    problems.extend(Problem(kind, cid, detail, tuple(sorted(users[cid])))
                    for cid, kind, detail in found)  # fmt: skip
    return VerifyReport(versions, count, total, tuple(problems), tuple(transient))


def _users(ws: Workspace, ref: str | None, cids: set[str]) -> dict[str, set[str]]:
    """The versions that need each of ``cids`` (a second pass, only when verify found any)."""
    users: dict[str, set[str]] = {cid: set() for cid in cids}
    if not cids:
        return users
    for m in _stream_manifests(ws, ref, None):
        for f in m.files:
            for c in f.chunks:
                if c.id in users:
                    users[c.id].add(m.ref)
    return users


@dataclass(frozen=True)
class GcPlan:
    """What garbage collection would delete, and the bytes that frees."""

    chunks: tuple[tuple[str, int], ...]
    temp_files: tuple[tuple[Path, int], ...]
    #: Hot copies no pinned version needs (services/pinning.py): (device, chunk, bytes).
    hot: tuple[tuple[Device, str, int], ...] = ()

    @property
    def bytes(self) -> int:
        return (sum(s for _c, s in self.chunks) + sum(s for _p, s in self.temp_files)
                + sum(s for _d, _c, s in self.hot))  # fmt: skip


@dataclass(frozen=True)
class GcResult:
    """What garbage collection found (``plan``) and, unless a dry run, deleted and freed."""

    plan: GcPlan
    deleted_chunks: int
    freed_bytes: int
    changes: Changes = field(default_factory=Changes)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """Counts and bytes, then every unused chunk and leftover temporary file (a dry run
        deletes none: ``deleted_chunks`` and ``freed_bytes`` are 0)."""
        plan = self.plan
        return {"dry_run": self.dry_run, "chunks": len(plan.chunks),
                "temp_files": len(plan.temp_files), "bytes": plan.bytes,
                "deleted_chunks": self.deleted_chunks, "freed_bytes": self.freed_bytes,
                "hot_copies": len(plan.hot),
                "unused_hot_copies": [{"chunk": c, "device": d.name, "bytes": n}
                                      for d, c, n in plan.hot],
                "unused_chunks": [{"chunk": c, "stored_bytes": n} for c, n in plan.chunks],
                "temp_file_paths": [str(p) for p, _n in plan.temp_files]}  # fmt: skip


def all_manifests(ws: Workspace, doing: str) -> Iterator[Manifest]:
    """Every version's manifest, one at a time, for deciding which chunks may be deleted.

    Refuses (IntegrityError) at the first manifest that cannot be read: its chunks would look
    unused, so ``doing`` (what the caller is about to delete for) could lose data. Callers
    decide only once the iteration is complete.
    """
    for key, _size in ws.repo.manifest_keys():
        try:
            manifest = ws.repo.read_manifest_key(key)
        except ModelManagerError as e:
            raise IntegrityError(
                f"cannot {doing} while a manifest is unreadable ({e.message}); "
                "deleting chunks now could lose data",
                path=key,
            ) from None
        yield manifest


GC = "collect garbage"


def plan_gc(ws: Workspace) -> GcPlan:
    """Chunks no version references, and temp files dead writers left behind.

    Refuses if any manifest cannot be read (IntegrityError: its chunks would look unused), and
    on any doubt (DoubtError, see :mod:`services.safety`): a metadata record failing its check,
    a device unmounted or not what it claims, too many needed chunks missing everywhere.
    """
    refuse_on_doubt(ws, GC, writes=False)
    return _plan_gc(ws)


def _plan_gc(ws: Workspace) -> GcPlan:
    """:func:`plan_gc` once the doubts are checked. Every referenced chunk and every stored
    piece wait in a table on disk (:class:`ChunkTable`): "is this chunk used?" is a query, not
    a set of every id in memory; only the unused chunks (what gc deletes) are kept."""
    with ChunkTable() as table:
        table.add_manifests(all_manifests(ws, GC))
        table.add_pieces(ws.repo.chunks)
        missing, needed = table.missing_count()
        if missing > needed // MISSING_SHARE:  # refused: the sets are made for the message
            refuse_missing(ws, GC, table.needed_ids(), set(table.stored_ids()))
        unused = tuple(table.unused())
    return GcPlan(unused, tuple(_leftovers(ws)), tuple(hot_garbage(ws.repo)))


def _leftovers(ws: Workspace) -> list[tuple[Path, int]]:
    """Temp files dead writers left in the main folder and on every device, each once (a
    device folder may lie inside the main folder)."""
    found: dict[Path, int] = {}
    for store in (ws.repo.blobs, *ws.repo.chunks.stores.values()):
        for p in store.temp_files():
            try:
                found.setdefault(p, p.stat().st_size)
            except FileNotFoundError:
                continue
    return sorted(found.items())


def collect_garbage(
    ws: Workspace,
    *,
    dry_run: bool = False,
    ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> GcResult:
    """Delete what :func:`plan_gc` finds, under the writer lock (so no import runs meanwhile).

    The plan is made under the lock too: a chunk an import wrote a moment ago is referenced by
    then, or belongs to an import that died and will never reference it.
    """
    with ws.repo.writer(lock_timeout, ctx=ctx):  # the given one (None: the lane job's)
        ctx = ctx or JobContext()
        ws.repo.chunks.refresh()
        refuse_on_doubt(ws, GC, writes=not dry_run)  # every device probed before a deletion
        plan = _plan_gc(ws)
        if dry_run:
            return GcResult(plan, 0, 0, dry_run=True)
        freed = deleted = 0

        def done() -> str:
            return (f"deleting {deleted} of {len(plan.chunks)} unused chunks; run 'gc' again "
                    "once the device is writable")  # fmt: skip

        ctx.unit = "chunk"  # the front shows chunks/s, not a byte rate it does not have
        with reporting("garbage collection", done):
            for n, (cid, size) in enumerate(plan.chunks):
                ctx.check()
                ws.repo.chunks.delete(cid)
                deleted += 1
                freed += size
                ctx.report(n + 1, len(plan.chunks), cid[:12])
            for device, cid, size in plan.hot:
                ctx.check()
                ws.repo.chunks.delete_hot(device, cid)
                freed += size
            for path, size in plan.temp_files:
                path.unlink(missing_ok=True)
                freed += size
            ws.repo.blobs.flush()
            ws.repo.chunks.flush()
    return GcResult(plan, len(plan.chunks), freed, Changes(storage=bool(plan.chunks or plan.hot)))


def reindex(ws: Workspace) -> SyncResult:
    """Rebuild the catalog from the manifests and labels."""
    return ws.catalog.rebuild()


@dataclass(frozen=True)
class Stats(Totals):
    """Sizes of a repository: what users stored, what is unique, what is on disk (the catalog's
    :class:`Totals`), and the hot copies beside them."""

    #: Bytes of hot copies of pinned versions per device (services/pinning.py): beside
    #: ``stored_bytes``, which counts the policy's pieces only.
    hot_bytes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "versions": self.versions,
            "logical_bytes": self.logical_bytes,
            "unique_bytes": self.unique_bytes,
            "stored_bytes": self.stored_bytes,
            "chunks": self.chunks,
            "dedup_ratio": ratio(self.unique_bytes, self.logical_bytes),
            "compression_ratio": ratio(self.stored_bytes, self.unique_bytes),
            "by_model": {k: v.to_json() for k, v in sorted(self.by_model.items())},
            "by_version": {k: v.to_json() for k, v in sorted(self.by_version.items())},
            "by_dtype": {k: v.to_json() for k, v in sorted(self.by_dtype.items())},
            "hot_bytes": dict(sorted(self.hot_bytes.items())),
        }


def stats(ws: Workspace, manifests: Iterable[Manifest] | None = None) -> Stats:
    """Measure the repository; stored bytes come from the pieces actually on the devices.

    Without ``manifests`` the catalog's content index answers (one listing of the pieces, no
    manifest read: 10,000 models took seconds of manifest reads); given them, they are read."""
    if manifests is None:
        t = ws.catalog.measure_stored()
        return Stats(**vars(t), hot_bytes=hot_bytes(ws.repo.chunks))
    on_disk = dict(ws.repo.chunks.iter_stored())
    unique: dict[str, int] = {}
    dtype_of: dict[str, str] = {}
    model_chunks: dict[str, set[str]] = {}
    model_logical: dict[str, int] = {}
    by_version: dict[str, Sizes] = {}
    versions, logical = 0, 0
    for m in manifests:
        versions += 1
        logical += m.logical_bytes
        model_logical[m.model] = model_logical.get(m.model, 0) + m.logical_bytes
        mine = model_chunks.setdefault(m.model, set())
        for f in m.files:
            hints = f.dtype_hints()
            pos = 0
            for c in f.chunks:
                unique[c.id] = c.length
                dtype_of.setdefault(c.id, hints.of(pos, pos + c.length) or "other")
                mine.add(c.id)
                pos += c.length
        ids = m.chunk_ids()
        by_version[m.ref] = Sizes(m.logical_bytes, sum(on_disk.get(c, 0) for c in ids))
    by_model = {
        name: Sizes(model_logical[name], sum(on_disk.get(c, 0) for c in ids))
        for name, ids in model_chunks.items()
    }
    dtype_logical: dict[str, int] = {}
    dtype_stored: dict[str, int] = {}
    for cid, length in unique.items():
        d = dtype_of[cid]
        dtype_logical[d] = dtype_logical.get(d, 0) + length
        dtype_stored[d] = dtype_stored.get(d, 0) + on_disk.get(cid, 0)
    by_dtype = {d: Sizes(dtype_logical[d], dtype_stored[d]) for d in dtype_logical}
    return Stats(
        len(model_chunks), versions, logical, sum(unique.values()), sum(on_disk.values()),
        len(on_disk), by_model, by_version, by_dtype, hot_bytes(ws.repo.chunks),
    )  # fmt: skip
