"""Move plans and their execution: pieces onto the devices placement now prefers (rebalance),
or off a device that is leaving (drain), never filling a device past its reserve."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelmanager.core.chunks.layout import Piece
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import DRAINING, Device
from modelmanager.core.redundancy.table import ChunkTable
from modelmanager.errors import IntegrityError, ModelManagerError


@dataclass(frozen=True)
class Move:
    """One piece to copy onto ``dest`` (then delete where it was)."""

    piece: Piece
    dest: Device


@dataclass(frozen=True)
class NotMoved:
    """A piece that was not moved: ``device`` is where it sits (stuck: fits on no other
    device, ``size`` known) or where it was going (the move failed), and why."""

    piece: str
    device: str
    reason: str
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"piece": self.piece, "device": self.device}
        if self.size is not None:
            out["size"] = self.size
        out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class MovePlan:
    """What a rebalance (or a drain) would do: the moves, planned against each device's free
    space, and the pieces that must leave a draining device but fit nowhere."""

    moves: tuple[Move, ...]
    stuck: tuple[NotMoved, ...]

    @property
    def bytes(self) -> int:
        return sum(m.piece.size for m in self.moves)

    @property
    def stuck_bytes(self) -> int:
        """Bytes of the pieces that fit nowhere."""
        return sum(s.size or 0 for s in self.stuck)

    def onto(self) -> dict[str, int]:
        """Bytes each device would receive, by device name."""
        out: dict[str, int] = {}
        for m in self.moves:
            out[m.dest.name] = out.get(m.dest.name, 0) + m.piece.size
        return out

    def to_json(self) -> dict[str, Any]:
        return {"pieces": len(self.moves), "bytes": self.bytes, "onto": self.onto(),
                "stuck": [s.to_json() for s in self.stuck]}  # fmt: skip


@dataclass(frozen=True)
class RebalanceReport:
    """What a rebalance (or drain) moved, and the pieces it could not."""

    moved_pieces: int
    moved_bytes: int
    failed: tuple[NotMoved, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "moved_pieces": self.moved_pieces,
            "moved_bytes": self.moved_bytes,
            "failed": [f.to_json() for f in self.failed],
        }


def _groups(pieces: list[Piece]) -> list[list[Piece]]:
    """Pieces of one chunk grouped by layout: all copies; each K+M layout's fragments."""
    groups: dict[tuple[int, int], list[Piece]] = {}
    for p in pieces:
        groups.setdefault((p.k, p.m), []).append(p)
    return list(groups.values())


def iter_moves(
    chunks: PlacedChunkStore, table: ChunkTable, draining: frozenset[str] = frozenset()
) -> Iterator[Move | NotMoved]:
    """Plan a rebalance one chunk at a time over the pieces in ``table`` (chunk-id order):
    each piece outside its chunk's target devices moves to a target that lacks it and still
    has room, counting what earlier moves take; a piece that must leave a draining device and
    fits nowhere is yielded as :class:`NotMoved`. Devices in ``draining`` (ids) are treated
    as draining, for a preview of ``device rm --drain`` that saves nothing."""
    room: dict[str, int | None] = {}

    def fits(d: Device, size: int) -> bool:
        if d.id not in room:
            room[d.id] = chunks.usable(d)
        left = room[d.id]
        return left is None or left >= size

    def leaving(d: Device) -> bool:
        return d.state == DRAINING or d.id in draining

    for ps in table.grouped_pieces():
        cid = ps[0].chunk_id
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
                        why = "no other device has room for it"
                        yield NotMoved(p.key, p.device.name, why, p.size)
                    continue
                dest = free[0]
                holders.add(dest.id)
                left = room[dest.id]
                if left is not None:
                    room[dest.id] = left - p.size
                yield Move(p, dest)


def plan_moves(chunks: PlacedChunkStore, draining: frozenset[str] = frozenset()) -> MovePlan:
    """Every move :func:`iter_moves` plans, kept (a preview, or a drain that reports them)."""
    moves: list[Move] = []
    stuck: list[NotMoved] = []
    with ChunkTable() as table:
        table.add_pieces(chunks)
        for item in iter_moves(chunks, table, draining):
            (moves if isinstance(item, Move) else stuck).append(item)  # type: ignore[arg-type]
    return MovePlan(tuple(moves), tuple(stuck))


def stream_moves(chunks: PlacedChunkStore, ctx: JobContext, batch: int = 1024) -> RebalanceReport:
    """Plan and carry out a rebalance ``batch`` moves at a time (under the writer lock), so
    memory holds one batch of moves, never every piece. The plan is walked once first to
    count the bytes to move, for progress (planning reads nothing but the table)."""
    moved = moved_bytes = seen = 0
    failed: list[NotMoved] = []
    quiet = JobContext(cancel_event=ctx.cancel_event)
    with ChunkTable() as table:
        table.add_pieces(chunks)
        total = sum(m.piece.size for m in iter_moves(chunks, table) if isinstance(m, Move))
        moves: list[Move] = []

        def run() -> None:
            nonlocal moved, moved_bytes
            done = execute_moves(chunks, MovePlan(tuple(moves), ()), quiet)
            moved += done.moved_pieces
            moved_bytes += done.moved_bytes
            failed.extend(done.failed)
            moves.clear()

        for item in iter_moves(chunks, table):
            if isinstance(item, NotMoved):
                failed.append(item)
                continue
            moves.append(item)
            seen += item.piece.size
            ctx.report(seen, total, item.piece.chunk_id[:12])
            if len(moves) >= batch:
                run()
        run()
    return RebalanceReport(moved, moved_bytes, tuple(failed))


def execute_moves(chunks: PlacedChunkStore, plan: MovePlan, ctx: JobContext) -> RebalanceReport:
    """Carry out a plan (under the writer lock). Each piece is written to its new device and
    read back first, and deleted from the old one after, so it is safe to interrupt and run
    again; the plan's stuck pieces are reported as failed."""
    moved = moved_bytes = done = 0
    failed: list[NotMoved] = list(plan.stuck)
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
            failed.append(NotMoved(p.key, dest.name, str(e)))
            continue
        chunks.delete_piece(p)
        moved += 1
        moved_bytes += p.size
        ctx.report(done, plan.bytes, p.chunk_id[:12])
    chunks.flush()
    return RebalanceReport(moved, moved_bytes, tuple(failed))
