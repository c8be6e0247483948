"""What a device change would do, before it is done: forgetting a device (which chunks become
under-replicated, which would be lost) and device folders that share one file system.

Two folders on one file system are one disk: a copy on each is not an independent copy, so
``device add``, ``device ls``, the Devices tab and the policy preview all say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from modelmanager.core.placement import Device
from modelmanager.core.redundancy.health import ChunkHealth, gather_pieces, needed_chunks
from modelmanager.core.redundancy.plans import file_systems
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.units import plural
from modelmanager.errors import ModelManagerError
from modelmanager.services import Workspace


def shared_file_systems(ws: Workspace) -> list[tuple[str, ...]]:
    """Names of devices that share one file system, one group each (empty when none do)."""
    volumes = file_systems(ws.repo.chunks)
    groups: dict[object, list[str]] = defaultdict(list)
    for d in ws.repo.devices.devices:
        groups[volumes[d.id]].append(d.name)
    return [tuple(names) for names in groups.values() if len(names) > 1]


def sharing_with(ws: Workspace, name: str) -> tuple[str, ...]:
    """The other devices on the file system of device ``name``."""
    for group in shared_file_systems(ws):
        if name in group:
            return tuple(n for n in group if n != name)
    return ()


def sharing_warning(groups: list[tuple[str, ...]]) -> str:
    """One line for the devices that share a file system, or "" when none do."""
    if not groups:
        return ""
    named = "; ".join(" and ".join(g) for g in groups)
    return (f"one file system holds several devices ({named}): copies on them are not "
            "independent, losing that disk loses them all")  # fmt: skip


@dataclass(frozen=True)
class ForgetPlan:
    """What forgetting a device (``device rm --force``) does to the chunks the versions need.

    ``readable``: the device was read (its pieces are known); otherwise every chunk the other
    devices do not hold in full is counted (it may hold what they lack). ``lost``: chunks no
    other device holds enough of to read; ``under_replicated``: readable, but below their
    policy until ``repair``."""

    device: str
    readable: bool
    pieces: int
    bytes: int
    under_replicated: int
    lost: int
    models_under: tuple[str, ...]
    models_lost: tuple[str, ...]
    versions_lost: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"device": self.device, "readable": self.readable, "pieces": self.pieces,
                "bytes": self.bytes, "under_replicated": self.under_replicated,
                "lost": self.lost, "models_under_replicated": list(self.models_under),
                "models_lost": list(self.models_lost),
                "versions_lost": list(self.versions_lost)}  # fmt: skip

    def loss_text(self) -> str:
        """The chunks it loses and the models and versions they belong to, in words."""
        return (f"{plural(self.lost, 'chunk')} of {', '.join(self.models_lost)} "
                f"({plural(len(self.versions_lost), 'version')}: "
                f"{', '.join(self.versions_lost[:5])}"
                f"{', ...' if len(self.versions_lost) > 5 else ''}) would be on no other "
                "device")  # fmt: skip


def _manifests(ws: Workspace) -> Iterator[Manifest]:
    for key, _size in ws.repo.manifest_keys():
        try:
            yield ws.repo.read_manifest_key(key)
        except ModelManagerError:
            continue  # verify reports it


def plan_forget(ws: Workspace, device: Device) -> ForgetPlan:
    """What forgetting ``device`` now would leave: pieces are counted by presence on the
    readable devices; nothing is read or written."""
    chunks = ws.repo.chunks
    readable = chunks.available(device)
    needed = needed_chunks(_manifests(ws), ws.repo.policies.for_model)
    gather_pieces(chunks, needed)
    pieces = size = 0
    under: list[ChunkHealth] = []
    lost: list[ChunkHealth] = []
    for h in needed.values():
        mine = [p for p in h.good if p.device.id == device.id]
        if readable and not mine:
            continue
        pieces += len(mine)
        size += sum(p.size for p in mine)
        # Unreadable, its pieces cannot be listed (and placement has changed since they were
        # written): every chunk the others do not hold in full counts below.
        rest = ChunkHealth(h.chunk_id, h.length, h.policy, h.models, h.refs,
                           [p for p in h.good if p.device.id != device.id])  # fmt: skip
        if rest.lost:
            lost.append(rest)
        elif rest.under_replicated:
            under.append(rest)
    return ForgetPlan(
        device.name, readable, pieces, size, len(under), len(lost),
        tuple(sorted({m for h in under for m in h.models})),
        tuple(sorted({m for h in lost for m in h.models})),
        tuple(sorted({r for h in lost for r in h.refs})),
    )  # fmt: skip
