"""Storage devices and where chunk pieces go on them.

A device is a folder the user registers (an NVMe, HDD, NAS mount, USB disk): it has a name, a
capacity weight, a tier and a state. Each device root holds an identity file naming the device
and its repository, so a disk remounted elsewhere is recognised and a foreign folder refused.
The repository folder itself is the built-in device ``main``.

Placement is weighted rendezvous hashing: every (chunk, device) pair gets a score from a hash,
scaled by the device's weight; a chunk's pieces go to the highest-scoring eligible devices.
It is deterministic, needs no table, and adding or removing a device moves only the pieces
whose top devices changed (about the new device's share of the weight).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import blake3

from modelmanager.core.repo.records import seal, unseal
from modelmanager.core.storage.atomic import atomic_write
from modelmanager.errors import IntegrityError, RepositoryError, UserError

IDENTITY_FILE = ".modelmanager-device.json"
DEVICES_FILE = "devices.json"
MAIN = "main"
TIERS = ("hot", "warm", "cold")
ONLINE, OFFLINE, DRAINING = "online", "offline", "draining"
#: Space kept free on every device: a write that would eat into it goes elsewhere.
RESERVE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Device:
    """A registered storage root. ``path`` '.' means the repository folder itself."""

    id: str
    name: str
    path: str
    weight: float = 1.0
    tier: str = "hot"
    state: str = ONLINE
    added: str = ""

    def root(self, repo_root: Path) -> Path:
        """The absolute folder of this device."""
        return repo_root if self.path == "." else Path(self.path)

    @property
    def placeable(self) -> bool:
        """True when new pieces may be placed here (online, not being drained)."""
        return self.state == ONLINE


def read_identity(root: Path, *, legacy: bool = False) -> dict[str, Any] | None:
    """The identity file of a device root, or None when absent, unreadable or damaged.

    ``legacy`` accepts an identity written before records were sealed (format 1)."""
    try:
        return unseal((root / IDENTITY_FILE).read_bytes(), str(root), legacy=legacy)
    except (OSError, IntegrityError):
        return None


def write_identity(root: Path, device: Device, repository_id: str) -> None:
    """Mark ``root`` as ``device`` of the repository (a sealed record, atomic, durable)."""
    doc = {
        "format": "modelmanager-device",
        "device_id": device.id,
        "repository_id": repository_id,
        "name": device.name,
    }
    atomic_write(root / IDENTITY_FILE, seal(doc))


def identity_matches(root: Path, device: Device, repository_id: str) -> bool:
    """True when ``root`` really is this device of this repository (mounted, not swapped)."""
    doc = read_identity(root)
    return bool(
        doc and doc.get("device_id") == device.id and doc.get("repository_id") == repository_id
    )


def new_device(name: str, path: str, weight: float, tier: str, added: str) -> Device:
    """A device description with a fresh id, after checking its settings."""
    check_device_settings(name, weight, tier)
    return Device(str(uuid.uuid4()), name, path, float(weight), tier, ONLINE, added)


def check_device_settings(name: str, weight: float, tier: str) -> None:
    """UserError for a bad device name, weight or tier."""
    if not name or not all(c.isalnum() or c in "._-" for c in name) or len(name) > 64:
        raise UserError(f"invalid device name {name!r}: use letters, digits, '.', '_', '-'")
    if not (0 < weight <= 1e6) or math.isnan(weight):
        raise UserError(f"device weight must be a positive number, got {weight}")
    if tier not in TIERS:
        raise UserError(f"device tier must be one of {', '.join(TIERS)}, got {tier!r}")


@dataclass(frozen=True)
class DeviceSet:
    """The registered devices of a repository (the contents of ``devices.json``)."""

    devices: tuple[Device, ...]

    @classmethod
    def default(cls, main_id: str) -> DeviceSet:
        """What a repository without ``devices.json`` has: just its own folder."""
        return cls((Device(main_id, MAIN, "."),))

    @classmethod
    def from_doc(cls, doc: dict[str, Any], source: Path | str) -> DeviceSet:
        """The device list a ``devices.json`` record holds; RepositoryError when malformed."""
        try:
            devices = tuple(Device(**d) for d in doc["devices"])
        except (ValueError, KeyError, TypeError) as e:
            raise RepositoryError(f"damaged device list ({e})", path=source) from None
        if sum(d.name == MAIN for d in devices) != 1:
            raise RepositoryError("damaged device list (no single 'main')", path=source)
        return cls(devices)

    def to_doc(self) -> dict[str, Any]:
        """The ``devices.json`` record (written through the repository's records)."""
        return {"format": 1, "devices": [asdict(d) for d in self.devices]}

    def get(self, name: str) -> Device:
        """The device called ``name``; UserError listing the devices otherwise."""
        for d in self.devices:
            if d.name == name:
                return d
        names = ", ".join(d.name for d in self.devices)
        raise UserError(f"no device named {name!r} (devices: {names})")

    def by_id(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def with_device(self, device: Device) -> DeviceSet:
        """A copy with ``device`` added, or replacing the one with its id."""
        others = tuple(d for d in self.devices if d.id != device.id)
        if any(d.name == device.name for d in others):
            raise UserError(f"a device named {device.name!r} already exists")
        return DeviceSet((*others, device))

    def without(self, device_id: str) -> DeviceSet:
        return DeviceSet(tuple(d for d in self.devices if d.id != device_id))

    def updated(self, name: str, **changes: Any) -> DeviceSet:
        device = self.get(name)
        return self.with_device(replace(device, **changes))


def _score(chunk_id: str, device: Device) -> float:
    digest = blake3.blake3(f"{device.id}/{chunk_id}".encode()).digest(8)
    u = (int.from_bytes(digest, "little") + 0.5) / 2.0**64
    return -device.weight / math.log(u)


def rank(chunk_id: str, devices: Iterable[Device]) -> list[Device]:
    """``devices`` ordered by preference for ``chunk_id`` (weighted rendezvous hashing)."""
    return sorted(devices, key=lambda d: _score(chunk_id, d), reverse=True)


def spread(chunk_ids: Sequence[str], devices: Sequence[Device]) -> dict[str, int]:
    """How many of ``chunk_ids`` each device ranks first for (to check the weights)."""
    counts = {d.name: 0 for d in devices}
    for cid in chunk_ids:
        counts[rank(cid, devices)[0].name] += 1
    return counts
