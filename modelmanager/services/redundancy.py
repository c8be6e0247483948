"""Scrub, repair and rebalance: keeping every chunk at its policy across the devices.

One survey serves all three: it walks every readable device, verifies every piece of every
chunk a version needs (re-reading once before calling a piece corrupt), and compares what is
good with what the chunk's policy asks for. Scrub reports it; repair rebuilds what is missing
or corrupt from good pieces only (chosen by hash) and converts layouts to the policy; rebalance
moves pieces to the devices placement now prefers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from modelmanager.core.chunks.placed import (
    Layout,
    Piece,
    PlacedChunkStore,
    PlacementError,
    fragment_key,
)
from modelmanager.core.chunks.store import chunk_key, decode_object
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import DRAINING, ONLINE, Device, rank
from modelmanager.core.redundancy import Policy, parse_fragment
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT, Policies
from modelmanager.errors import IntegrityError, ModelManagerError
from modelmanager.services import Changes, Workspace
from modelmanager.services.importing import default_workers


@dataclass
class ChunkHealth:
    """What the survey found for one chunk."""

    chunk_id: str
    length: int
    policy: Policy
    models: set[str] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    good: list[Piece] = field(default_factory=list)
    corrupt: list[tuple[Piece, str]] = field(default_factory=list)
    transient: list[Piece] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (piece, expected device)

    def good_layout(self) -> Layout:
        layout = Layout()
        for p in self.good:
            if p.index is None:
                layout.copies.append(p.device)
            else:
                layout.fragments.setdefault((p.k, p.m), {}).setdefault(p.index, []).append(p.device)
        return layout

    @property
    def tolerance(self) -> int:
        return self.good_layout().tolerance()

    @property
    def under_replicated(self) -> bool:
        return self.tolerance < self.policy.tolerates

    @property
    def lost(self) -> bool:
        return self.tolerance < 0

    @property
    def healthy(self) -> bool:
        return not (self.missing or self.corrupt or self.under_replicated)


def _needed(ws: Workspace, policies: Policies | None = None) -> dict[str, ChunkHealth]:
    """Every chunk a version needs, with the policy it should have (under ``policies``, or
    the repository's own)."""
    policies = policies or ws.repo.policies
    needed: dict[str, ChunkHealth] = {}
    for key, _size in ws.repo.manifest_keys():
        try:
            m = ws.repo.read_manifest_key(key)
        except ModelManagerError:
            continue  # verify reports unreadable manifests
        policy = policies.for_model(m.model)
        for f in m.files:
            for c in f.chunks:
                h = needed.get(c.id)
                if h is None:
                    h = needed[c.id] = ChunkHealth(c.id, c.length, policy)
                elif policy.tolerates > h.policy.tolerates:
                    h.policy = policy  # a chunk shared by models gets the strongest policy
                h.models.add(m.model)
                h.refs.add(m.ref)
    return needed


def _check_piece(chunks: PlacedChunkStore, piece: Piece, length: int) -> str | None:
    """None when the piece is good, else why not."""
    store = chunks.stores[piece.device.id]
    source = f"{piece.device.name}:{piece.key}"
    try:
        blob = store.get(piece.key)
        if piece.index is None:
            decode_object(blob, piece.chunk_id, length, source)
        else:
            parse_fragment(blob, source)
    except (IntegrityError, OSError) as e:
        return e.message if isinstance(e, IntegrityError) else str(e)
    except ModelManagerError as e:
        return e.message
    return None


def _expected_devices(chunks: PlacedChunkStore, chunk_id: str) -> list[Device]:
    """Where placement put (or would put) the chunk's pieces: online devices, mounted or not.

    A device whose folder vanished was eligible when the pieces were written, so it is
    ranked too: that is how scrub names the device a missing piece belongs to.
    """
    return rank(chunk_id, [d for d in chunks.devices.devices if d.state == ONLINE])


def _find_missing(chunks: PlacedChunkStore, h: ChunkHealth) -> None:
    expected = _expected_devices(chunks, h.chunk_id)
    layout = h.good_layout()
    p = h.policy
    if p.erasure:
        have = layout.fragments.get((p.k, p.m), {})
        used = {d.id for devs in have.values() for d in devs}
        gaps = [i for i in range(p.k + p.m) if i not in have]
        # Fragment i was written to the i-th ranked device; name that one where it is free.
        named: dict[int, str] = {}
        for i in gaps:
            if i < len(expected) and expected[i].id not in used:
                named[i] = expected[i].name
                used.add(expected[i].id)
        spare = [d for d in expected if d.id not in used]
        for i in gaps:
            where = named.get(i) or (spare.pop(0).name if spare else "?")
            h.missing.append((f"fragment {i} of {p.k}+{p.m}", where))
    else:
        holders = {d.id for d in layout.copies}
        lacking = [d.name for d in expected if d.id not in holders]
        for n in range(p.copies - len(holders)):
            h.missing.append(("copy", lacking[n] if n < len(lacking) else "?"))


def survey(ws: Workspace, ctx: JobContext | None = None) -> list[ChunkHealth]:
    """Check every piece of every needed chunk on every readable device."""
    ctx = ctx or JobContext()
    chunks = ws.repo.chunks
    chunks.refresh()
    needed = _needed(ws)
    for d in chunks.readable_devices():
        for piece in chunks.iter_pieces(d):
            h = needed.get(piece.chunk_id)
            if h is not None:
                h.good.append(piece)  # provisionally; checked below
    total = sum(h.length for h in needed.values())

    def check(h: ChunkHealth) -> ChunkHealth:
        candidates, h.good = h.good, []
        for piece in candidates:
            why = _check_piece(chunks, piece, h.length)
            if why is not None:
                second = _check_piece(chunks, piece, h.length)  # re-read before condemning
                if second is None:
                    h.transient.append(piece)
                else:
                    h.corrupt.append((piece, second))
                    continue
            h.good.append(piece)
        _find_missing(chunks, h)
        return h

    done = 0
    results = []
    with ThreadPoolExecutor(default_workers(), thread_name_prefix="mm-scrub") as pool:
        for h in pool.map(check, needed.values()):
            ctx.check()
            done += h.length
            ctx.report(done, total, h.chunk_id[:12])
            results.append(h)
    return results


@dataclass(frozen=True)
class ScrubReport:
    """Scrub findings, per piece and summed per device and per model."""

    chunks: int
    pieces: int
    missing: tuple[dict[str, Any], ...]
    corrupt: tuple[dict[str, Any], ...]
    under_replicated: tuple[dict[str, Any], ...]
    lost: tuple[dict[str, Any], ...]
    transient: tuple[dict[str, Any], ...]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.under_replicated)

    def by(self, field_name: str) -> dict[str, dict[str, int]]:
        """Counts of each finding kind per device (``"device"``) or per model (``"models"``)."""
        out: dict[str, dict[str, int]] = {}
        for kind in ("missing", "corrupt", "under_replicated", "lost"):
            for item in getattr(self, kind):
                keys = item.get(field_name, [])
                for key in keys if isinstance(keys, list) else [keys]:
                    out.setdefault(key, {}).setdefault(kind, 0)
                    out[key][kind] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chunks": self.chunks,
            "pieces": self.pieces,
            "missing": list(self.missing),
            "corrupt": list(self.corrupt),
            "under_replicated": list(self.under_replicated),
            "lost": list(self.lost),
            "transient": list(self.transient),
            "devices": self.by("device"),
            "models": self.by("models"),
        }


def scrub(ws: Workspace, ctx: JobContext | None = None) -> ScrubReport:
    """Read every stored piece and check its hash; see :class:`ScrubReport`."""
    health = survey(ws, ctx)
    missing, corrupt, under, lost, transient = [], [], [], [], []
    pieces = 0
    for h in health:
        models = sorted(h.models)
        pieces += len(h.good) + len(h.corrupt)
        for what, device in h.missing:
            missing.append({"chunk": h.chunk_id, "piece": what, "device": device, "models": models})
        for piece, why in h.corrupt:
            corrupt.append({
                "chunk": h.chunk_id, "piece": piece.key, "device": piece.device.name,
                "detail": why, "models": models,
            })  # fmt: skip
        for piece in h.transient:
            transient.append({"chunk": h.chunk_id, "piece": piece.key, "device": piece.device.name})
        if h.under_replicated:
            under.append({
                "chunk": h.chunk_id, "policy": str(h.policy), "tolerates": max(h.tolerance, -1),
                "needs": h.policy.tolerates, "models": models,
            })  # fmt: skip
        if h.lost:
            lost.append({"chunk": h.chunk_id, "versions": sorted(h.refs), "models": models})
    return ScrubReport(
        len(health), pieces, tuple(missing), tuple(corrupt), tuple(under), tuple(lost),
        tuple(transient),
    )  # fmt: skip


@dataclass(frozen=True)
class RepairReport:
    """What repair rebuilt, removed and could not save."""

    repaired_chunks: int
    written_pieces: int
    written_bytes: int
    removed_pieces: int
    lost: tuple[dict[str, Any], ...]
    failed: tuple[dict[str, Any], ...]
    device_problems: dict[str, str] = field(default_factory=dict)
    changes: Changes = field(default_factory=Changes)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "repaired_chunks": self.repaired_chunks,
            "written_pieces": self.written_pieces,
            "written_bytes": self.written_bytes,
            "removed_pieces": self.removed_pieces,
            "lost": list(self.lost),
            "failed": list(self.failed),
            "device_problems": self.device_problems,
        }


def _recover_object(chunks: PlacedChunkStore, h: ChunkHealth) -> BytesLike | None:
    """The chunk object from good pieces only (verified), or None when too few are good."""
    layout = h.good_layout()
    if layout.tolerance() < 0:
        return None
    try:
        obj, _data, _degraded = chunks.read_object(h.chunk_id, h.length, layout)
    except IntegrityError:
        return None
    return obj


def _surplus(h: ChunkHealth, chunks: PlacedChunkStore) -> list[Piece]:
    """Good pieces beyond what the policy needs, once the policy's own layout is complete."""
    p = h.policy
    layout = h.good_layout()
    if p.erasure:
        complete = len(layout.fragments.get((p.k, p.m), {})) == p.k + p.m
    else:
        complete = len({d.id for d in layout.copies}) >= p.copies
    return _left_over(h, chunks) if complete else []


def _keeps_readable(chunks: PlacedChunkStore, h: ChunkHealth, dropping: list[Piece]) -> bool:
    """True when the chunk still decodes (and hashes right) from what stays after ``dropping``.

    Each fragment can pass its own hash yet belong to another encoding of the chunk (after an
    interrupted recompress): only a real decode proves the remaining layout.
    """
    keep = [p for p in h.good if p not in dropping]
    rest = ChunkHealth(h.chunk_id, h.length, h.policy, good=keep)
    try:
        chunks.read_object(h.chunk_id, h.length, rest.good_layout())
    except IntegrityError:
        return False
    return True


def _lacking(h: ChunkHealth) -> tuple[int, int]:
    """(pieces the chunk's policy lacks, the size of each), sized from a good piece."""
    copies = [p for p in h.good if p.index is None]
    fragments = [p for p in h.good if p.index is not None]
    if copies:
        obj = copies[0].size
    elif fragments:
        obj = fragments[0].size * fragments[0].k
    else:
        return 0, 0  # lost: nothing to write from
    p = h.policy
    layout = h.good_layout()
    if p.erasure:
        return p.k + p.m - len(layout.fragments.get((p.k, p.m), {})), -(-obj // p.k)
    return max(0, p.copies - len({d.id for d in layout.copies})), obj


def _repair_need(h: ChunkHealth) -> int:
    """Bytes repair writes for one chunk, less the corrupt pieces it deletes first."""
    pieces, size = _lacking(h)
    return max(0, pieces * size - sum(c.size for c, _why in h.corrupt))


def _left_over(h: ChunkHealth, chunks: PlacedChunkStore | None = None) -> list[Piece]:
    """The pieces a chunk no longer needs once its policy's layout is complete: other layouts,
    and copies (or fragments of one index) beyond what the policy asks for. With ``chunks``,
    the copies kept are those on the devices placement ranks first."""
    p = h.policy
    if p.erasure:
        kept: set[int] = set()
        extra = []
        for piece in h.good:
            if (
                piece.index is not None
                and (piece.k, piece.m) == (p.k, p.m)
                and (piece.index not in kept)
            ):
                kept.add(piece.index)
            else:
                extra.append(piece)
        return extra
    copies = [piece for piece in h.good if piece.index is None]
    if chunks is not None:
        order = {d.id: n for n, d in enumerate(_expected_devices(chunks, h.chunk_id))}
        copies.sort(key=lambda pc: order.get(pc.device.id, 1 << 30))
    return copies[p.copies :] + [piece for piece in h.good if piece.index is not None]


@dataclass(frozen=True)
class PolicyPlan:
    """What converting stored chunks to a new policy writes and removes (a preview)."""

    policy: Policy
    chunks: int  # chunks whose pieces change
    write_pieces: int
    write_bytes: int
    remove_pieces: int
    remove_bytes: int
    tolerates: int  # devices that may be lost afterwards, for the chunks it covers

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": str(self.policy), "chunks": self.chunks,
            "write_pieces": self.write_pieces, "write_bytes": self.write_bytes,
            "remove_pieces": self.remove_pieces, "remove_bytes": self.remove_bytes,
            "tolerates": self.tolerates,
        }  # fmt: skip


def plan_policy(ws: Workspace, policies: Policies, policy: Policy) -> PolicyPlan:
    """Preview converting every stored chunk to ``policies``: pieces are counted where the
    devices hold them (by presence; scrub checks their bytes), nothing is read or written."""
    chunks = ws.repo.chunks
    needed = _needed(ws, policies)
    for d in chunks.readable_devices():
        for piece in chunks.iter_pieces(d):
            h = needed.get(piece.chunk_id)
            if h is not None:
                h.good.append(piece)
    changed = write_pieces = write_bytes = remove_pieces = remove_bytes = 0
    for h in needed.values():
        pieces, size = _lacking(h)
        extra = _left_over(h)
        if pieces or extra:
            changed += 1
            write_pieces += pieces
            write_bytes += pieces * size
            remove_pieces += len(extra)
            remove_bytes += sum(piece.size for piece in extra)
    return PolicyPlan(policy, changed, write_pieces, write_bytes, remove_pieces, remove_bytes,
                      policy.tolerates)  # fmt: skip


def repair(
    ws: Workspace, *, ctx: JobContext | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> RepairReport:
    """Bring every chunk back to its policy: rebuild missing or corrupt pieces from good ones.

    Corrupt pieces are removed (they are never a source); new pieces go where placement puts
    them; once a chunk's policy layout is complete, pieces of other layouts (after a policy
    change) are removed. A chunk with too few good pieces is reported lost, never invented.
    """
    ctx = ctx or JobContext()
    repo = ws.repo
    with repo.writer(lock_timeout):
        chunks = repo.chunks
        health = survey(ws, JobContext(cancel_event=ctx.cancel_event))
        todo = [h for h in health if not h.healthy or _surplus(h, chunks)]
        need = sum(_repair_need(h) for h in todo)
        chunks.require_room(need, f"repairing {len(todo)} chunks")
        total = sum(h.length for h in todo)
        repaired = written = written_bytes = removed = 0
        lost: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        done = 0
        for h in todo:
            ctx.check()
            obj = _recover_object(chunks, h)
            if obj is None:
                lost.append({"chunk": h.chunk_id, "versions": sorted(h.refs)})
                continue
            for piece, _why in h.corrupt:
                chunks.delete_piece(piece)
                removed += 1
            try:
                written_bytes += chunks.write_pieces(h.chunk_id, obj, h.policy, h.good_layout())
            except PlacementError as e:
                failed.append({"chunk": h.chunk_id, "reason": e.message})
                continue
            chunks.flush()
            fresh = recheck(chunks, h)
            written += max(0, len(fresh.good) - (len(h.good)))
            surplus = _surplus(fresh, chunks) if fresh.healthy else []
            if surplus and _keeps_readable(chunks, fresh, surplus):
                for piece in surplus:
                    chunks.delete_piece(piece)
                    removed += 1
            repaired += 1
            done += h.length
            ctx.report(done, total, h.chunk_id[:12])
        chunks.flush()
        problems = chunks.write_problems()
    return RepairReport(
        repaired, written, written_bytes, removed, tuple(lost), tuple(failed), problems,
        Changes(storage=True),
    )  # fmt: skip


def recheck(chunks: PlacedChunkStore, h: ChunkHealth) -> ChunkHealth:
    """Survey one chunk again (fresh piece list, every piece verified)."""
    fresh = ChunkHealth(h.chunk_id, h.length, h.policy, h.models, h.refs)
    layout = chunks.locate(h.chunk_id)
    candidates = [Piece(h.chunk_id, d, chunk_key(h.chunk_id), 0) for d in layout.copies]
    for (k, m), frags in layout.fragments.items():
        for i, devs in frags.items():
            key = fragment_key(k, m, h.chunk_id, i)
            candidates.extend(Piece(h.chunk_id, d, key, 0, i, k, m) for d in devs)
    for piece in candidates:
        why = _check_piece(chunks, piece, h.length)
        if why is None:
            fresh.good.append(piece)
        else:
            fresh.corrupt.append((piece, why))
    _find_missing(chunks, fresh)
    return fresh


@dataclass(frozen=True)
class RebalanceReport:
    moved_pieces: int
    moved_bytes: int
    failed: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "moved_pieces": self.moved_pieces,
            "moved_bytes": self.moved_bytes,
            "failed": list(self.failed),
        }


@dataclass(frozen=True)
class Move:
    """One piece to copy onto ``dest`` (then delete where it was)."""

    piece: Piece
    dest: Device


@dataclass(frozen=True)
class MovePlan:
    """What a rebalance (or a drain) would do: the moves, planned against each device's free
    space, and the pieces that must leave a draining device but fit nowhere."""

    moves: tuple[Move, ...]
    stuck: tuple[dict[str, Any], ...]

    @property
    def bytes(self) -> int:
        return sum(m.piece.size for m in self.moves)

    @property
    def stuck_bytes(self) -> int:
        """Bytes of the pieces that fit nowhere."""
        return sum(int(s["size"]) for s in self.stuck)

    def onto(self) -> dict[str, int]:
        """Bytes each device would receive, by device name."""
        out: dict[str, int] = {}
        for m in self.moves:
            out[m.dest.name] = out.get(m.dest.name, 0) + m.piece.size
        return out

    def to_json(self) -> dict[str, Any]:
        return {"pieces": len(self.moves), "bytes": self.bytes, "onto": self.onto(),
                "stuck": list(self.stuck)}  # fmt: skip


def plan_moves(chunks: PlacedChunkStore, draining: frozenset[str] = frozenset()) -> MovePlan:
    """Plan a rebalance: each piece outside its chunk's target devices moves to a target that
    lacks it and still has room, counting what earlier moves take. Devices in ``draining``
    (ids) are treated as draining, for a preview of ``device rm --drain`` that saves nothing.
    """
    pieces: dict[str, list[Piece]] = {}
    for d in chunks.readable_devices():
        for p in chunks.iter_pieces(d):
            pieces.setdefault(p.chunk_id, []).append(p)
    room: dict[str, int | None] = {}

    def fits(d: Device, size: int) -> bool:
        if d.id not in room:
            room[d.id] = chunks.usable(d)
        left = room[d.id]
        return left is None or left >= size

    def leaving(d: Device) -> bool:
        return d.state == DRAINING or d.id in draining

    moves: list[Move] = []
    stuck: list[dict[str, Any]] = []
    for cid, ps in pieces.items():
        for group in _groups(ps):
            size = max(p.size for p in group)
            eligible = [d for d in chunks.placement(cid, size) if d.id not in draining]
            target_ids = {d.id for d in eligible[: len(group)]}
            holders = {p.device.id for p in group}
            for p in group:
                if p.device.id in target_ids and not leaving(p.device):
                    continue
                free = [
                    d for d in eligible[: len(group)] if d.id not in holders and fits(d, p.size)
                ]
                if not free and leaving(p.device):  # a drain may use any device with room
                    free = [d for d in eligible if d.id not in holders and fits(d, p.size)]
                if not free:
                    if leaving(p.device):
                        stuck.append({"piece": p.key, "device": p.device.name, "size": p.size,
                                      "reason": "no other device has room for it"})  # fmt: skip
                    continue
                dest = free[0]
                holders.add(dest.id)
                left = room[dest.id]
                if left is not None:
                    room[dest.id] = left - p.size
                moves.append(Move(p, dest))
    return MovePlan(tuple(moves), tuple(stuck))


def preview_moves(ws: Workspace, draining: str | None = None) -> MovePlan:
    """What ``rebalance`` would move now, or, with a device name, what draining it would;
    nothing is changed (``rebalance --dry-run``, ``device rm --drain --dry-run``)."""
    chunks = ws.repo.chunks
    chunks.refresh()
    ids = frozenset({ws.repo.devices.get(draining).id}) if draining else frozenset()
    return plan_moves(chunks, ids)


def rebalance(
    ws: Workspace, *, ctx: JobContext | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> RebalanceReport:
    """Move pieces onto the devices placement now prefers (after devices came or went).

    The moves are planned first against each device's free space (:func:`plan_moves`), so a
    device is never filled past its reserve; :func:`execute_moves` then carries them out.
    """
    repo = ws.repo
    with repo.writer(lock_timeout):
        repo.chunks.refresh()
        return execute_moves(repo.chunks, plan_moves(repo.chunks), ctx or JobContext())


def execute_moves(chunks: PlacedChunkStore, plan: MovePlan, ctx: JobContext) -> RebalanceReport:
    """Carry out a plan (under the writer lock). Each piece is written to its new device and
    read back first, and deleted from the old one after, so it is safe to interrupt and run
    again; the plan's stuck pieces are reported as failed."""
    moved = moved_bytes = done = 0
    failed: list[dict[str, Any]] = list(plan.stuck)
    for move in plan.moves:
        ctx.check()
        p, dest = move.piece, move.dest
        done += p.size
        try:
            blob = chunks.stores[p.device.id].get(p.key)
            chunks.stores[dest.id].put(p.key, blob)
            if chunks.stores[dest.id].get(p.key) != blob:
                raise IntegrityError("copy read back differently", path=p.key)
        except (ModelManagerError, OSError) as e:
            failed.append({"piece": p.key, "device": dest.name, "reason": str(e)})
            continue
        chunks.delete_piece(p)
        moved += 1
        moved_bytes += p.size
        ctx.report(done, plan.bytes, p.chunk_id[:12])
    chunks.flush()
    return RebalanceReport(moved, moved_bytes, tuple(failed))


def _groups(pieces: list[Piece]) -> list[list[Piece]]:
    """Pieces of one chunk grouped by layout: all copies; each K+M layout's fragments."""
    groups: dict[tuple[int, int], list[Piece]] = {}
    for p in pieces:
        groups.setdefault((p.k, p.m), []).append(p)
    return list(groups.values())


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


def version_layout(ws: Workspace, ref: str) -> VersionLayout:
    """Which device holds which piece of every chunk of ``ref``, and each chunk's health."""
    manifest = ws.repo.resolve(ref)
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
