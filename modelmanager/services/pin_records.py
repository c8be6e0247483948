"""The pin records, the hot tier's fill limit and last uses: what pinning and the hot-tier job read.

Which versions are pinned hot is a sealed metadata record per version,
``models/<model-dir>/pins/<NNNNNNNN>.json`` (``{"version", "pinned", "set", "written"}``, plus
``"auto": true, "loaded"`` for an automatic promotion), replicated like every record; unpinning
writes ``"pinned": false`` rather than deleting it, so a device that was away cannot bring a pin
back. A pin of a version that no longer exists (``rm``) counts as none, and :func:`release_pin`
marks it unpinned (``"removed"``). The fill limit (a share of each hot device's volume) is the
record ``tiers.json``; last uses (the later of a pin and the last load) are ``hot-use.json`` on
main, a hint like ``changes.json``. Writing hot copies is services/pinning.py and
services/hot_tier.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.placement import Device
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import model_key
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT, Repository
from modelmanager.core.repo.versions import utc_now
from modelmanager.core.storage import BlobNotFound
from modelmanager.core.storage.atomic import replace_unsynced
from modelmanager.errors import IntegrityError, UserError
from modelmanager.services import Workspace

PINS = "pins"
#: The record holding the hot tier's settings (``{"fill_limit": share, "written"}``).
TIERS_KEY = "tiers.json"
#: Share of a hot device's volume that pins may fill before the least recently used are demoted.
DEFAULT_FILL_LIMIT = 0.9
#: Last load of each version on main (a hint, not replicated; see the module docstring).
USE_FILE = "hot-use.json"


def pin_key(model: str, seq: int) -> str:
    """Where the pin record of a version is kept."""
    return f"{model_key(model)}/{PINS}/{seq:08d}.json"


@dataclass(frozen=True)
class Pin:
    """A pinned version and when it was pinned."""

    model: str
    version: int
    since: str
    auto: bool = False  # promoted by the hot-tier job for a load, not pinned by the user

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.ref, "pinned": self.since, "auto": self.auto}


def _pin_records(repo: Repository, *, strict: bool) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(model, version, record) of every pin record; a damaged one is skipped, or with
    ``strict`` refused (gc must not take a pinned version's hot copies for garbage)."""
    for key, _size in repo.records.keys("models"):
        parts = key.split("/")
        stem = parts[-1].removesuffix(".json")
        if len(parts) != 4 or parts[2] != PINS or not stem.isdigit():
            continue
        try:
            doc = repo.records.read(key)
        except (BlobNotFound, IntegrityError) as e:
            if strict:
                raise IntegrityError(
                    f"a pin record cannot be read ({e}); deleting hot copies now could drop a "
                    "pinned version's",
                    path=key,
                ) from None
            continue
        yield parts[1].replace("~", "/"), int(stem), doc


def pins(repo: Repository, *, strict: bool = False) -> list[Pin]:
    """The pinned versions that exist, by model and number."""
    out = []
    for model, seq, doc in _pin_records(repo, strict=strict):
        if doc.get("pinned") is True and seq in repo.version_numbers(model):
            out.append(Pin(model, seq, str(doc.get("set", "")), doc.get("auto") is True))
    return sorted(out, key=lambda p: (p.model, p.version))


def pin_state(repo: Repository, model: str, seq: int) -> Pin | None:
    """The pin of one version (one record read), or None when it is not pinned."""
    try:
        doc = repo.records.read(pin_key(model, seq))
    except (BlobNotFound, IntegrityError):
        return None
    if doc.get("pinned") is not True or seq not in repo.version_numbers(model):
        return None
    return Pin(model, seq, str(doc.get("set", "")), doc.get("auto") is True)


def pinned_chunks(repo: Repository) -> set[str]:
    """Every chunk a pinned version needs (refuses on an unreadable pin record or manifest)."""
    needed: set[str] = set()
    for p in pins(repo, strict=True):
        needed |= repo.read_manifest(p.model, p.version).chunk_ids()
    return needed


def removed_pins(repo: Repository) -> list[tuple[str, int]]:
    """(model, version) of pin records still saying ``pinned`` for a version that was
    removed (``rm``): :func:`release_pin` marks them, so the record agrees with the version."""
    out = []
    for model, seq, doc in _pin_records(repo, strict=False):
        if doc.get("pinned") is True and seq in repo.removed_numbers(model):
            out.append((model, seq))
    return out


def release_pin(repo: Repository, model: str, seq: int) -> bool:
    """Mark the pin of a removed version unpinned (``"removed"`` says why); the caller holds
    the writer lock. ``rm`` calls it for each version it removes; True when a record changed."""
    try:
        doc = repo.records.read(pin_key(model, seq))
    except (BlobNotFound, IntegrityError):
        return False  # none, or damaged: scrub and repair deal with it
    if doc.get("pinned") is not True:
        return False
    now = utc_now()
    repo.records.write(pin_key(model, seq), {"version": seq, "pinned": False, "set": now,
                                             "written": now, "removed": now})  # fmt: skip
    return True


def fill_limit(repo: Repository) -> float:
    """The share of a hot device's volume pins may fill (``tiers.json``, else the default)."""
    try:
        value = repo.records.read(TIERS_KEY).get("fill_limit")
    except (BlobNotFound, IntegrityError):
        return DEFAULT_FILL_LIMIT
    if isinstance(value, float | int) and 0 < value <= 1:
        return float(value)
    return DEFAULT_FILL_LIMIT


def set_fill_limit(
    ws: Workspace, limit: float, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> float:
    """Set the hot devices' fill limit (a share of each volume, above 0 and at most 1)."""
    if not 0 < limit <= 1:
        raise UserError(f"a fill limit is a share of the device above 0 and at most 1, not {limit}")
    with ws.repo.writer(lock_timeout):
        ws.repo.records.write(TIERS_KEY, {"fill_limit": limit, "written": utc_now()})
    return limit


def last_uses(repo: Repository) -> dict[str, str]:
    """When each version (``model@N``) was last loaded here, as recorded by :func:`note_use`."""
    try:
        doc = json.loads((repo.root / USE_FILE).read_bytes())
    except (OSError, ValueError):
        return {}  # a hint: none yet, or unreadable, means "never loaded"
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)}


def note_use(repo: Repository, model: str, seq: int) -> None:
    """Record that ``model@seq`` was loaded now (best effort: a read-only main keeps no hint).
    Not synced: a hint lost to a power loss costs an order of demotion, and two syncs a load
    cost a small model's load a tenth of its time."""
    uses = last_uses(repo)
    uses[f"{model}@{seq}"] = utc_now()
    with contextlib.suppress(OSError):  # the hint is lost, never the load
        replace_unsynced(repo.root / USE_FILE, json.dumps(uses, sort_keys=True).encode())


def last_use_of(p: Pin, uses: dict[str, str]) -> str:
    """A pinned version's last use: the later of its pin and its last load."""
    return max(p.since, uses.get(p.ref, ""))


def pinned_explicitly(repo: Repository, p: Pin) -> bool:
    """Whether the user pinned it (not the hot-tier job): only promotions are demoted for one."""
    try:
        return repo.records.read(pin_key(p.model, p.version)).get("auto") is not True
    except (BlobNotFound, IntegrityError):
        return True  # unknown: treated as the user's


def unique_chunks(manifest: Manifest) -> dict[str, int]:
    """Each distinct chunk of a version and its length: the hot copies it needs."""
    return {c.id: c.length for f in manifest.files for c in f.chunks}


def hot_targets(chunks: PlacedChunkStore) -> list[Device]:
    """Hot-tier devices that can take hot copies now, the roomiest first."""
    ok = [d for d in chunks.hot_devices() if d.placeable]
    return sorted(ok, key=lambda d: -chunks.usable(d))


def no_hot_device(repo: Repository) -> UserError:
    """The refusal when no online hot-tier device can take hot copies (names every tier)."""
    tiers = ", ".join(f"{d.name} {d.tier}" for d in repo.devices.devices)
    return UserError(f"no online hot-tier device can take hot copies (devices: {tiers}); set "
                     "one with 'modelmanager device set NAME --tier hot'")  # fmt: skip


def utc_minute(iso: str) -> str:
    """A recorded time to the minute, as shown ("2026-12-01 10:58"; UTC)."""
    return iso[:16].replace("T", " ")
