"""Scrub, repair and rebalance: keeping every chunk at its policy across the devices.

Thin compositions of the engine in :mod:`modelmanager.core.redundancy`: the survey
(``health``), the surplus rules and repair (``plans``) and move plans (``moves``), run on a
workspace's repository, under its writer lock where they write. Scrub reports the survey;
repair rebuilds what is missing or corrupt from good pieces only and converts layouts to the
policy; rebalance moves pieces to the devices placement now prefers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.jobs import JobContext
from modelmanager.core.redundancy import Policy
from modelmanager.core.redundancy.health import (
    ChunkHealth,
    ScrubReport,
    iter_survey,
    needed_chunks,
    scrub_report,
)
from modelmanager.core.redundancy.moves import (
    Move,
    MovePlan,
    NotMoved,
    RebalanceReport,
    execute_moves,
    plan_moves,
    stream_moves,
)
from modelmanager.core.redundancy.plans import (
    NotRepaired,
    PolicyPlan,
    Repaired,
    Unrecoverable,
    repair_chunks,
    repair_need,
    to_repair,
)
from modelmanager.core.redundancy.plans import plan_policy as plan_chunk_policy
from modelmanager.core.redundancy.table import ChunkTable
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.core.repo.versions import Policies
from modelmanager.errors import ModelManagerError
from modelmanager.services import Changes, Workspace
from modelmanager.services.safety import refuse_on_doubt, reporting

#: Public names; the engine's (ChunkHealth, MovePlan, ...) are re-exported for the CLI and GUI.
__all__ = [
    "ChunkHealth", "Move", "MovePlan", "NotMoved", "PolicyPlan", "Rebalanced",
    "RebalanceReport", "RepairReport", "ScrubReport", "VersionLayout", "execute_moves",
    "plan_moves", "plan_policy", "preview_moves", "rebalance", "repair", "scrub",
    "stream_survey", "survey", "version_layout",
]  # fmt: skip


def _readable_manifests(ws: Workspace) -> Iterator[Manifest]:
    """Every manifest that can be read (verify reports the others)."""
    for key, _size in ws.repo.manifest_keys():
        try:
            yield ws.repo.read_manifest_key(key)
        except ModelManagerError:
            continue


def _needed(ws: Workspace, policies: Policies | None = None) -> dict[str, ChunkHealth]:
    """Every chunk a version needs, with the policy it should have (under ``policies``, or
    the repository's own)."""
    return needed_chunks(_readable_manifests(ws), (policies or ws.repo.policies).for_model)


def stream_survey(ws: Workspace, ctx: JobContext | None = None) -> Iterator[ChunkHealth]:
    """Check every piece of every needed chunk on every readable device, one chunk's record
    at a time in chunk-id order (a bounded window in flight; the lists of needed chunks and
    stored pieces wait on disk in a :class:`ChunkTable`, so memory does not grow with them)."""
    chunks = ws.repo.chunks
    chunks.refresh()
    with ChunkTable() as table:
        table.add_manifests(_readable_manifests(ws), ws.repo.policies.for_model)
        table.add_pieces(chunks)
        yield from iter_survey(chunks, table, ctx)


def survey(ws: Workspace, ctx: JobContext | None = None) -> list[ChunkHealth]:
    """Every needed chunk's record (:func:`stream_survey`, all kept: for small jobs and tests;
    repair streams)."""
    return list(stream_survey(ws, ctx))


def scrub(ws: Workspace, ctx: JobContext | None = None) -> ScrubReport:
    """Read every stored piece and check its hash, and every copy of every metadata record;
    see :class:`ScrubReport` (findings and counters only: memory does not grow with every
    chunk's record)."""
    report = scrub_report(stream_survey(ws, ctx))
    metadata = tuple(str(p) for p in ws.repo.metadata_problems(copies=True))
    return replace(report, metadata=metadata)


@dataclass(frozen=True)
class RepairReport:
    """What repair rebuilt, removed and could not save."""

    repaired_chunks: int
    written_pieces: int
    written_bytes: int
    removed_pieces: int
    lost: tuple[Unrecoverable, ...]
    failed: tuple[NotRepaired, ...]
    device_problems: dict[str, str] = field(default_factory=dict)
    changes: Changes = field(default_factory=Changes)
    #: Why nothing was deleted (metadata in doubt: pieces were only added), or "".
    held_back: str = ""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.failed and not self.held_back

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "repaired_chunks": self.repaired_chunks,
            "written_pieces": self.written_pieces,
            "written_bytes": self.written_bytes,
            "removed_pieces": self.removed_pieces,
            "lost": [x.to_json() for x in self.lost],
            "failed": [x.to_json() for x in self.failed],
            "device_problems": self.device_problems,
            "held_back": self.held_back,
        }


def plan_policy(ws: Workspace, policies: Policies, policy: Policy) -> PolicyPlan:
    """Preview converting every stored chunk to ``policies``: pieces are counted where the
    devices hold them (by presence; scrub checks their bytes), nothing is read or written."""
    return plan_chunk_policy(ws.repo.chunks, _needed(ws, policies), policy)


def repair(
    ws: Workspace, *, ctx: JobContext | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> RepairReport:
    """Bring every chunk back to its policy: rebuild missing or corrupt pieces from good ones.

    Corrupt pieces are removed (they are never a source); new pieces go where placement puts
    them; once a chunk's policy layout is complete, pieces of other layouts (after a policy
    change) are removed. A chunk with too few good pieces is reported lost, never invented.

    Refused up front (nothing changed) while a device is not what it claims (another
    device's or another repository's disk, an unreadable identity). A device that is not
    mounted, or refuses writes, does not stop it: rebuilding what a lost or failing disk held
    elsewhere is repair's job; each piece goes to the next device that takes it, and a
    deletion a device refuses is reported, not fatal. While a metadata record fails its
    check, pieces are only added, never deleted (a policy record it cannot trust must not
    lower redundancy): ``held_back`` says so.

    Chunks are repaired as the survey streams them, :data:`REPAIR_BATCH` at a time, each
    batch's room checked before it is written: memory holds a batch, never every chunk.
    """
    given, ctx = ctx, ctx or JobContext()  # the caller's own ctx is watched while waiting
    repo = ws.repo
    with repo.writer(lock_timeout, ctx=given):
        chunks = repo.chunks
        chunks.refresh()
        # Metadata first: every copy that is missing, damaged or stale is rewritten from an
        # intact one (and a damaged device identity, where the device's own metadata copy
        # proves it is ours), so the checks and the survey below see what really is there.
        repo.sync_replicas()
        refuse_on_doubt(ws, "repair", metadata=False, writes=False, unmounted=False)
        doubts = repo.metadata_problems()
        try:
            with reporting("repair", lambda: "rebuilding what it could; run 'repair' again"):
                done = _repair_stream(chunks, stream_survey(ws, ctx), ctx, keep=bool(doubts))
        finally:  # pieces written or deleted: the kept sizes on disk are measured again
            ws.catalog.forget_stored()
        problems = chunks.write_problems()
        held_back = ""
        if doubts:  # exit 1 until the records are healed: the repository is not whole
            held_back = (
                f"{len(doubts)} metadata record(s) fail their check (first: {doubts[0]}), so "
                f"nothing was deleted ({done.kept_pieces} corrupt or surplus piece(s) kept, "
                "not deleted); run 'modelmanager verify'"
            )
    return RepairReport(
        done.chunks, done.written_pieces, done.written_bytes, done.removed_pieces, done.lost,
        done.failed, problems, Changes(storage=True), held_back,
    )  # fmt: skip


#: Chunks repair gathers from the survey before rebuilding them: memory holds one batch of
#: records, and each batch's room is checked before it is written.
REPAIR_BATCH = 256


def _repair_stream(
    chunks: PlacedChunkStore, health: Iterator[ChunkHealth], ctx: JobContext, *, keep: bool
) -> Repaired:
    """Repair chunks as the survey finds them (:func:`to_repair`'s rule), a batch at a time,
    summing what each batch did; the survey reports progress, repair only checks cancel."""
    quiet = JobContext(cancel_event=ctx.cancel_event)
    parts: list[Repaired] = []
    todo: list[ChunkHealth] = []

    def run() -> None:
        need = sum(repair_need(h) for h in todo)
        chunks.require_room(need, f"repairing {len(todo)} chunks")
        parts.append(repair_chunks(chunks, todo, quiet, keep=keep))
        todo.clear()

    for h in health:
        todo.extend(to_repair(chunks, [h]))
        if len(todo) >= REPAIR_BATCH:
            run()
    if todo:
        run()
    return Repaired(
        sum(p.chunks for p in parts), sum(p.written_pieces for p in parts),
        sum(p.written_bytes for p in parts), sum(p.removed_pieces for p in parts),
        tuple(x for p in parts for x in p.lost), tuple(x for p in parts for x in p.failed),
        sum(p.kept_pieces for p in parts),
    )  # fmt: skip


def preview_moves(ws: Workspace, draining: str | None = None) -> MovePlan:
    """What ``rebalance`` would move now, or, with a device name, what draining it would;
    nothing is changed (``rebalance --dry-run``, ``device rm --drain --dry-run``)."""
    chunks = ws.repo.chunks
    chunks.refresh()
    ids = frozenset({ws.repo.devices.get(draining).id}) if draining else frozenset()
    refuse_on_doubt(ws, f"drain {draining}" if draining else "rebalance", writes=False)
    return plan_moves(chunks, ids)


@dataclass(frozen=True)
class Rebalanced(RebalanceReport):
    """A rebalance's report and what it changed: where pieces live (storage), if any moved."""

    changes: Changes = field(default_factory=Changes)


def rebalance(
    ws: Workspace, *, ctx: JobContext | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Rebalanced:
    """Move pieces onto the devices placement now prefers (after devices came or went).

    The moves are planned against each device's free space (:func:`iter_moves`), so a device
    is never filled past its reserve, and carried out a bounded batch at a time as they are
    planned (:func:`stream_moves`): memory does not grow with the pieces.
    """
    repo = ws.repo
    with repo.writer(lock_timeout, ctx=ctx):
        repo.chunks.refresh()
        refuse_on_doubt(ws, "rebalance")  # before the first move: every device writable
        with reporting("rebalance", lambda: "some moves; run 'rebalance' again"):
            report = stream_moves(repo.chunks, ctx or JobContext())
    return Rebalanced(report.moved_pieces, report.moved_bytes, report.failed,
                      Changes(storage=bool(report.moved_pieces)))  # fmt: skip


@dataclass(frozen=True)
class ChunkPlacement:
    """Where one chunk of a version lives: pieces per device name, and its health."""

    chunk_id: str
    length: int
    pieces: dict[str, str]  # device name -> "copy" or "fragment i of K+M"
    health: str  # "ok" | "degraded" | "missing"


@dataclass(frozen=True)
class VersionLayout:
    """The shard layout of a version, as the GUI draws it (presence only: nothing is hashed)."""

    ref: str
    policy: str
    devices: tuple[str, ...]
    chunks: tuple[ChunkPlacement, ...]


def version_layout(ws: Workspace, ref: str | Manifest) -> VersionLayout:
    """Which device holds which piece of every chunk of ``ref``, and each chunk's health
    (``ref`` may be the manifest already read: the GUI reads a selected version once)."""
    manifest = ref if isinstance(ref, Manifest) else ws.repo.resolve(ref)
    chunks = ws.repo.chunks
    policy = ws.repo.policy_for(manifest.model)
    seen: dict[str, ChunkPlacement] = {}
    for f in manifest.files:
        for c in f.chunks:
            if c.id in seen:
                continue
            layout = chunks.locate(c.id)
            pieces = {d.name: "copy" for d in layout.copies}
            for (k, m), frags in layout.fragments.items():
                for i, devs in frags.items():
                    for d in devs:
                        pieces[d.name] = f"fragment {i} of {k}+{m}"
            tolerance = layout.tolerance()
            health = (
                "missing" if tolerance < 0
                else "degraded" if tolerance < policy.tolerates
                else "ok"
            )  # fmt: skip
            seen[c.id] = ChunkPlacement(c.id, c.length, pieces, health)
    names = tuple(d.name for d in ws.repo.devices.devices)
    return VersionLayout(manifest.ref, str(policy), names, tuple(seen.values()))
