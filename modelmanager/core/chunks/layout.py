"""Where a chunk's pieces are: piece keys, the layout of one chunk, one stored piece.

Piece keys on a device root:
  copy       chunks/<id[:2]>/<id>                     (a whole chunk object, chunks.store)
  fragment   fragments/<K>+<M>/<id[:2]>/<id>.<index>  (see core.redundancy)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelmanager.core.placement import Device
from modelmanager.core.redundancy import fragment_dir
from modelmanager.errors import UserError


def fragment_key(k: int, m: int, chunk_id: str, index: int) -> str:
    """The key of fragment ``index`` of a chunk coded K+M."""
    return f"{fragment_dir(k, m)}/{chunk_id[:2]}/{chunk_id}.{index}"


@dataclass
class Layout:
    """Where the pieces of one chunk are: devices with a copy, devices per fragment index."""

    copies: list[Device] = field(default_factory=list)
    fragments: dict[tuple[int, int], dict[int, list[Device]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.copies and not self.fragments

    def tolerance(self) -> int:
        """Devices that may fail before the chunk is lost, judging by presence (-1: unreadable)."""
        best = len({d.id for d in self.copies}) - 1
        for (k, _m), frags in self.fragments.items():
            best = max(best, len(frags) - k)
        return best


@dataclass(frozen=True)
class Piece:
    """One stored piece, as found by walking a device."""

    chunk_id: str
    device: Device
    key: str
    size: int
    index: int | None = None  # fragment index; None for a whole copy
    k: int = 0
    m: int = 0


class PlacementError(UserError):
    """Not enough eligible devices (online, mounted, with room) to meet a policy."""
