"""Surplus rules and plans: what a chunk lacks or has beyond its policy, what converting to a
policy would write and remove, and repairing chunks back to their policy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelmanager.core.chunks.layout import Piece, PlacementError
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import Device, rank
from modelmanager.core.redundancy import Policy
from modelmanager.core.redundancy.health import (
    ChunkHealth,
    expected_devices,
    gather_pieces,
    recheck,
)
from modelmanager.errors import IntegrityError


def recover_object(chunks: PlacedChunkStore, h: ChunkHealth) -> BytesLike | None:
    """The chunk object from good pieces only (verified), or None when too few are good."""
    layout = h.good_layout()
    if layout.tolerance() < 0:
        return None
    try:
        obj, _data, _degraded = chunks.read_object(h.chunk_id, h.length, layout)
    except IntegrityError:
        return None
    return obj


def surplus(h: ChunkHealth, chunks: PlacedChunkStore) -> list[Piece]:
    """Good pieces beyond what the policy needs, once the policy's own layout is complete."""
    p = h.policy
    layout = h.good_layout()
    if p.erasure:
        complete = len(layout.fragments.get((p.k, p.m), {})) == p.k + p.m
    else:
        complete = len({d.id for d in layout.copies}) >= p.copies
    return left_over(h, chunks) if complete else []


def keeps_readable(chunks: PlacedChunkStore, h: ChunkHealth, dropping: list[Piece]) -> bool:
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


def lacking(h: ChunkHealth) -> tuple[int, int]:
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


def repair_need(h: ChunkHealth) -> int:
    """Bytes repair writes for one chunk, less the corrupt pieces it deletes first."""
    pieces, size = lacking(h)
    return max(0, pieces * size - sum(c.size for c, _why in h.corrupt))


def left_over(h: ChunkHealth, chunks: PlacedChunkStore | None = None) -> list[Piece]:
    """The pieces a chunk no longer needs once its policy's layout is complete: other layouts,
    and copies (or fragments of one index) beyond what the policy asks for. With ``chunks``,
    the copies kept are those on the devices placement prefers (:func:`kept_copies`)."""
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
    keep = kept_copies(h, chunks)
    return [piece for piece in h.good if piece not in keep]


def kept_copies(h: ChunkHealth, chunks: PlacedChunkStore | None = None) -> list[Piece]:
    """The whole copies a chunk keeps under its (copies=N) policy: with ``chunks``, those on
    the devices placement prefers (spread over file systems, :func:`expected_devices`), so
    lowering copies keeps the copy on a lone disk rather than two on one disk."""
    copies = [piece for piece in h.good if piece.index is None]
    if chunks is not None:
        order = {d.id: n for n, d in enumerate(expected_devices(chunks, h.chunk_id))}
        copies.sort(key=lambda pc: order.get(pc.device.id, 1 << 30))
    return copies[: h.policy.copies]


@dataclass(frozen=True)
class PolicyPlan:
    """What converting stored chunks to a new policy writes and removes (a preview)."""

    policy: Policy
    chunks: int  # chunks whose pieces change
    write_pieces: int
    write_bytes: int
    remove_pieces: int
    remove_bytes: int
    #: File systems (disks) that may be lost afterwards without losing any chunk it covers:
    #: two device folders on one file system are one disk, not two independent copies.
    tolerates: int

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": str(self.policy), "chunks": self.chunks,
            "write_pieces": self.write_pieces, "write_bytes": self.write_bytes,
            "remove_pieces": self.remove_pieces, "remove_bytes": self.remove_bytes,
            "tolerates": self.tolerates,
        }  # fmt: skip


def plan_policy(
    chunks: PlacedChunkStore, needed: dict[str, ChunkHealth], policy: Policy
) -> PolicyPlan:
    """Preview converting the ``needed`` chunks (each with its new policy) to ``policy``:
    pieces are counted where the devices hold them (by presence; scrub checks their bytes),
    nothing is read or written. ``tolerates`` counts file systems, not device folders."""
    gather_pieces(chunks, needed)
    volumes = file_systems(chunks)
    eligible = [d for d in chunks.devices.devices if d.placeable and chunks.available(d)]
    tolerates = worst_tolerance(policy, [volumes[d.id] for d in eligible])
    changed = write_pieces = write_bytes = remove_pieces = remove_bytes = 0
    for h in needed.values():
        if h.policy == policy:
            after = devices_after(chunks, h, rank(h.chunk_id, eligible))
            tolerates = min(tolerates, survives(policy, [volumes[d.id] for d in after]))
        pieces, size = lacking(h)
        extra = left_over(h)
        if pieces or extra:
            changed += 1
            write_pieces += pieces
            write_bytes += pieces * size
            remove_pieces += len(extra)
            remove_bytes += sum(piece.size for piece in extra)
    return PolicyPlan(policy, changed, write_pieces, write_bytes, remove_pieces, remove_bytes,
                      max(0, tolerates))  # fmt: skip


def file_systems(chunks: PlacedChunkStore) -> dict[str, object]:
    """Each device's file system by device id (``PlacedChunkStore.volume``: the one rule
    placement, scrub and previews share)."""
    return {d.id: chunks.volume(d) for d in chunks.devices.devices}


def survives(policy: Policy, volumes: list[object]) -> int:
    """How many file systems may be lost without losing a chunk whose pieces lie on
    ``volumes`` (one per piece; fragment i on ``volumes[i]``); -1 when it is short already."""
    counts = sorted(Counter(volumes).values(), reverse=True)
    if not policy.erasure:
        return len(counts) - 1
    if len(volumes) < policy.k:
        return -1
    room, lost = len(volumes) - policy.k, 0
    for c in counts:  # the file systems holding most pieces go first
        if c > room:
            break
        room -= c
        lost += 1
    return lost


def worst_tolerance(policy: Policy, volumes: Iterable[object]) -> int:
    """What the unluckiest chunk survives when placement may pick any of the devices whose
    file systems are ``volumes``: placement deals pieces one round at a time, one per file
    system per round (:meth:`PlacedChunkStore.spread`), so only the last round's choice is
    free, and every file system in a round holds as many pieces as the others in it."""
    sizes = sorted(Counter(volumes).values(), reverse=True)
    placed: list[object] = []
    for depth in range(max(sizes, default=0)):
        for n, size in enumerate(sizes):  # the biggest file systems first
            if size > depth and len(placed) < policy.pieces:
                placed.append(n)
    return survives(policy, placed) if len(placed) == policy.pieces else -1


def devices_after(chunks: PlacedChunkStore, h: ChunkHealth, ranked: list[Device]) -> list[Device]:
    """Where a chunk's pieces lie once repaired to ``h.policy``: the pieces of its layout it
    keeps, then, for those it lacks, the devices of ``ranked`` (its rendezvous rank) as
    placement spreads them, the kept pieces' file systems counted as taken."""
    p = h.policy
    if p.erasure:
        have = h.good_layout().fragments.get((p.k, p.m), {})
        kept = {i: devs[0] for i, devs in have.items() if devs}
        taken = {k.id for k in kept.values()}
        spare = chunks.spread([d for d in ranked if d.id not in taken], list(kept.values()))
        out = []
        for i in range(p.k + p.m):
            if i in kept:
                out.append(kept[i])
            elif spare:
                out.append(spare.pop(0))
        return out
    holding: list[Device] = []
    for piece in kept_copies(h, chunks):
        if piece.device.id not in {d.id for d in holding}:
            holding.append(piece.device)
    extra = chunks.spread([d for d in ranked if d.id not in {k.id for k in holding}], holding)
    return holding + extra[: p.copies - len(holding)]


@dataclass(frozen=True)
class NotRepaired:
    """A chunk repair could not write back to its policy, and why."""

    chunk: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "reason": self.reason}


@dataclass(frozen=True)
class Unrecoverable:
    """A chunk repair found too few good pieces of, and the versions that need it."""

    chunk: str
    versions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "versions": list(self.versions)}


@dataclass(frozen=True)
class Repaired:
    """What :func:`repair_chunks` rebuilt, removed and could not save."""

    chunks: int
    written_pieces: int
    written_bytes: int
    removed_pieces: int
    lost: tuple[Unrecoverable, ...]
    failed: tuple[NotRepaired, ...]
    kept_pieces: int = 0  # corrupt or surplus pieces left in place (``keep``)


def to_repair(chunks: PlacedChunkStore, health: list[ChunkHealth]) -> list[ChunkHealth]:
    """The chunks repair acts on: unhealthy ones, and healthy ones with surplus pieces."""
    return [h for h in health if not h.healthy or surplus(h, chunks)]


def repair_chunks(
    chunks: PlacedChunkStore, todo: list[ChunkHealth], ctx: JobContext, *, keep: bool = False
) -> Repaired:
    """Bring each chunk back to its policy (under the writer lock): rebuild missing or corrupt
    pieces from good ones only, then drop surplus pieces the policy no longer needs.

    Corrupt pieces are removed (they are never a source); new pieces go where placement puts
    them; a chunk with too few good pieces is reported lost, never invented. ``keep`` (the
    metadata is in doubt) only adds pieces: nothing corrupt or surplus is deleted.
    """
    total = sum(h.length for h in todo)
    repaired = written = written_bytes = removed = kept = done = 0
    lost: list[Unrecoverable] = []
    failed: list[NotRepaired] = []

    def drop(h: ChunkHealth, pieces: list[Piece]) -> int:
        """Delete ``pieces`` (or, with ``keep``, count them); a device refusing the deletion
        is reported for the chunk, not fatal. The number deleted."""
        nonlocal kept
        if keep:
            kept += len(pieces)
            return 0
        gone = 0
        for piece in pieces:
            try:
                chunks.delete_piece(piece)
            except OSError as e:
                failed.append(NotRepaired(h.chunk_id, f"could not delete {piece.key}: {e}"))
                continue
            gone += 1
        return gone

    for h in todo:
        ctx.check()
        obj = recover_object(chunks, h)
        if obj is None:
            lost.append(Unrecoverable(h.chunk_id, tuple(sorted(h.refs))))
            continue
        removed += drop(h, [piece for piece, _why in h.corrupt])
        try:
            written_bytes += chunks.write_pieces(h.chunk_id, obj, h.policy, h.good_layout())
        except PlacementError as e:
            failed.append(NotRepaired(h.chunk_id, e.message))
            continue
        chunks.flush()
        fresh = recheck(chunks, h)
        written += max(0, len(fresh.good) - (len(h.good)))
        extra = surplus(fresh, chunks) if fresh.healthy else []
        if extra and keeps_readable(chunks, fresh, extra):
            removed += drop(fresh, extra)
        repaired += 1
        done += h.length
        ctx.report(done, total, h.chunk_id[:12])
    chunks.flush()
    return Repaired(repaired, written, written_bytes, removed, tuple(lost), tuple(failed), kept)
