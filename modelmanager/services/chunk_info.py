"""One chunk of a version, as the Shard layout shows it when its cell is clicked.

Which tensors its bytes belong to, its plain and stored size, the codec it is stored with,
and every piece: the device, what the piece is, and the device's state. Reads one piece's
header (to name its codec); writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelmanager.core.chunks.placed import Layout
from modelmanager.core.codecs.base import codec_by_id
from modelmanager.errors import ModelManagerError
from modelmanager.services import Workspace


@dataclass(frozen=True)
class PieceInfo:
    """One stored piece: the device it is on, what it is, and how that device is."""

    device: str
    piece: str  # "copy" or "fragment i of K+M"
    state: str  # the device's state: online, draining, offline, ...


@dataclass(frozen=True)
class ChunkDetails:
    """One chunk of ``ref``: its tensors (``file: name``), sizes, codec and pieces."""

    ref: str
    chunk_id: str
    length: int
    stored: int
    codec: str
    tensors: tuple[str, ...]
    pieces: tuple[PieceInfo, ...]


def _pieces(layout: Layout, states: dict[str, str]) -> tuple[PieceInfo, ...]:
    out = [PieceInfo(d.name, "copy", states.get(d.name, "?")) for d in layout.copies]
    for (k, m), frags in sorted(layout.fragments.items()):
        for i, devs in sorted(frags.items()):
            out += [PieceInfo(d.name, f"fragment {i} of {k}+{m}", states.get(d.name, "?"))
                    for d in devs]  # fmt: skip
    return tuple(out)


def chunk_details(ws: Workspace, ref: str, chunk_id: str) -> ChunkDetails:
    """Everything the Shard layout says about one chunk of the version ``ref``."""
    repo = ws.repo
    manifest = repo.resolve(ref)
    tensors: list[str] = []
    length = 0
    for f in manifest.files:
        pos = 0
        for c in f.chunks:
            if c.id == chunk_id:
                length = c.length
                lo, hi = pos, pos + c.length
                tensors += [f"{f.path}: {t.name}" for t in f.tensors
                            if t.start < hi and t.end > lo]  # fmt: skip
                if not f.tensors:
                    tensors.append(f"{f.path}: bytes {lo:,}-{hi:,} (no tensors)")
            pos += c.length
    chunks = repo.chunks
    layout = chunks.locate(chunk_id)
    states = {d.name: d.state for d in repo.devices.devices}
    try:
        codec = codec_by_id(chunks.header(chunk_id).codec_id).name
    except ModelManagerError as exc:
        codec = f"unreadable ({exc})"
    return ChunkDetails(
        manifest.ref, chunk_id, length, chunks.stored_size(chunk_id) or 0, codec,
        tuple(dict.fromkeys(tensors)), _pieces(layout, states),
    )  # fmt: skip
