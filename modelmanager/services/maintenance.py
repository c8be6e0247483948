"""Keeping a repository honest: verify, garbage collection, reindex, statistics."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from modelmanager.core.catalog import SyncResult
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.chunks.store import ChunkMissing, chunk_key
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.errors import IntegrityError, ModelManagerError
from modelmanager.services import Changes, Workspace
from modelmanager.services.importing import default_workers


@dataclass(frozen=True)
class Problem:
    """One finding of verify: what kind, which object, why, and the versions it affects."""

    kind: str  # "missing" | "corrupt" | "manifest" | "label"
    subject: str
    detail: str
    versions: tuple[str, ...] = ()


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


def _load_manifests(ws: Workspace, ref: str | None) -> tuple[list[Manifest], list[Problem]]:
    if ref is not None:
        return [ws.repo.resolve(ref)], []
    manifests, problems = [], []
    for key, _size in ws.repo.manifest_keys():
        try:
            manifests.append(ws.repo.read_manifest_key(key))
        except ModelManagerError as e:
            problems.append(Problem("manifest", key, e.message))
    return manifests, problems


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
    manifests, problems = _load_manifests(ws, ref)
    for model in sorted({m.model for m in manifests} if ref else set(ws.repo.model_names())):
        problems.extend(_check_labels(ws, model))
    needed: dict[str, int] = {}
    users: dict[str, list[str]] = {}
    for m in manifests:
        for f in m.files:
            for c in f.chunks:
                needed[c.id] = c.length
                users.setdefault(c.id, []).append(m.ref)
    total = sum(needed.values())
    chunks = ws.repo.chunks

    def check(cid: str) -> tuple[str, str, str, bool]:
        """(chunk id, problem kind or "", detail, passed only when read again)."""
        length = needed[cid]
        try:
            _check_chunk(chunks, cid, length, quick)
        except ChunkMissing as e:
            return cid, "missing", e.message, False
        except IntegrityError:
            try:  # read once more before calling it corrupt: the first failure may be transient
                _check_chunk(chunks, cid, length, quick)
            except IntegrityError as e:
                return cid, "corrupt", e.message, False
            return cid, "", "", True
        return cid, "", "", False

    done = 0
    transient = []
    with ThreadPoolExecutor(default_workers(), thread_name_prefix="mm-verify") as pool:
        for cid, kind, detail, was_transient in pool.map(check, sorted(needed)):
            ctx.check()
            done += needed[cid]
            ctx.report(done, total, cid[:12])
            if was_transient:
                transient.append(cid)
            if kind:
                problems.append(Problem(kind, cid, detail, tuple(sorted(set(users[cid])))))
    return VerifyReport(len(manifests), len(needed), total, tuple(problems), tuple(transient))


@dataclass(frozen=True)
class GcPlan:
    """What garbage collection would delete, and the bytes that frees."""

    chunks: tuple[tuple[str, int], ...]
    temp_files: tuple[tuple[Path, int], ...]

    @property
    def bytes(self) -> int:
        return sum(s for _c, s in self.chunks) + sum(s for _p, s in self.temp_files)


@dataclass(frozen=True)
class GcResult:
    plan: GcPlan
    deleted_chunks: int
    freed_bytes: int
    changes: Changes = field(default_factory=Changes)


def plan_gc(ws: Workspace) -> GcPlan:
    """Chunks no version references, and temp files dead writers left behind.

    Refuses (IntegrityError) if any manifest cannot be read: its chunks would look unused.
    """
    referenced: set[str] = set()
    for key, _size in ws.repo.manifest_keys():
        try:
            referenced |= ws.repo.read_manifest_key(key).chunk_ids()
        except ModelManagerError as e:
            raise IntegrityError(
                f"cannot collect garbage while a manifest is unreadable ({e.message}); "
                "deleting chunks now could lose data",
                path=key,
            ) from None
    unused = tuple(sorted((c, s) for c, s in ws.repo.chunks.iter_stored() if c not in referenced))
    temps = []
    for p in ws.repo.blobs.temp_files():
        try:
            temps.append((p, p.stat().st_size))
        except FileNotFoundError:
            continue
    return GcPlan(unused, tuple(temps))


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
    ctx = ctx or JobContext()
    with ws.repo.writer(lock_timeout):
        plan = plan_gc(ws)
        if dry_run:
            return GcResult(plan, 0, 0)
        freed = 0
        for n, (cid, size) in enumerate(plan.chunks):
            ctx.check()
            ws.repo.chunks.delete(cid)
            freed += size
            ctx.report(n + 1, len(plan.chunks), cid[:12])
        for path, size in plan.temp_files:
            path.unlink(missing_ok=True)
            freed += size
        ws.repo.blobs.flush()
    return GcResult(plan, len(plan.chunks), freed, Changes(storage=bool(plan.chunks)))


def reindex(ws: Workspace) -> SyncResult:
    """Rebuild the catalog from the manifests and labels."""
    return ws.catalog.rebuild()


@dataclass(frozen=True)
class Stats:
    """Sizes of a repository: what users stored, what is unique, what is on disk."""

    models: int
    versions: int
    logical_bytes: int
    unique_bytes: int
    stored_bytes: int
    chunks: int

    def to_json(self) -> dict[str, float | int]:
        return {
            "models": self.models,
            "versions": self.versions,
            "logical_bytes": self.logical_bytes,
            "unique_bytes": self.unique_bytes,
            "stored_bytes": self.stored_bytes,
            "chunks": self.chunks,
            "dedup_ratio": _ratio(self.unique_bytes, self.logical_bytes),
            "compression_ratio": _ratio(self.stored_bytes, self.unique_bytes),
        }


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 1.0


def stats(ws: Workspace, manifests: Iterable[Manifest] | None = None) -> Stats:
    """Measure the repository; stored bytes come from the chunk objects actually on disk."""
    unique: dict[str, int] = {}
    models, versions, logical = set(), 0, 0
    for m in manifests if manifests is not None else ws.repo.iter_manifests():
        models.add(m.model)
        versions += 1
        logical += m.logical_bytes
        for f in m.files:
            for c in f.chunks:
                unique[c.id] = c.length
    stored = 0
    count = 0
    for _cid, size in ws.repo.chunks.iter_stored():
        stored += size
        count += 1
    return Stats(len(models), versions, logical, sum(unique.values()), stored, count)
