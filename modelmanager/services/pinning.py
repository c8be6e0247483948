"""Pinning a version hot: one plain copy of each of its chunks on a hot-tier device.

A pinned version keeps, beside its policy's pieces (unchanged, on any tier), a hot copy of
every chunk: ``hot/<id[:2]>/<id>`` on a hot-tier device, the chunk's plain bytes, so a load
reads it straight into place with no decode and checks it by hashing like any piece
(core/chunks/fetch.py). Hot copies never count toward a policy. Which versions are pinned is a
sealed metadata record per version, ``models/<model-dir>/pins/<NNNNNNNN>.json``
(``{"version", "pinned", "set", "written"}``), replicated like every record; unpinning writes
``"pinned": false`` rather than deleting it, so a device that was away cannot bring a pin back.
A pin of a version that no longer exists (``rm``) counts as none. ``gc`` deletes the hot
copies no pinned version needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from modelmanager.core.chunks.placed import HOT, PlacedChunkStore
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import Device
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import model_key
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT, Repository
from modelmanager.core.repo.versions import utc_now
from modelmanager.core.storage import BlobNotFound
from modelmanager.core.units import human_bytes
from modelmanager.errors import IntegrityError, NotFoundError, UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.safety import reporting

PINS = "pins"


def pin_key(model: str, seq: int) -> str:
    """Where the pin record of a version is kept."""
    return f"{model_key(model)}/{PINS}/{seq:08d}.json"


@dataclass(frozen=True)
class Pin:
    """A pinned version and when it was pinned."""

    model: str
    version: int
    since: str

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.ref, "pinned": self.since}


@dataclass(frozen=True)
class PinResult:
    """What ``pin`` wrote: hot copies made and reused, on which device."""

    ref: str
    device: str
    chunks: int
    written: int  # hot copies written now
    written_bytes: int
    changes: Changes = field(default_factory=Changes)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.ref, "device": self.device, "chunks": self.chunks,
                "written": self.written, "written_bytes": self.written_bytes}  # fmt: skip


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
            out.append(Pin(model, seq, str(doc.get("set", ""))))
    return sorted(out, key=lambda p: (p.model, p.version))


def pinned_chunks(repo: Repository) -> set[str]:
    """Every chunk a pinned version needs (refuses on an unreadable pin record or manifest)."""
    needed: set[str] = set()
    for p in pins(repo, strict=True):
        needed |= repo.read_manifest(p.model, p.version).chunk_ids()
    return needed


def hot_targets(chunks: PlacedChunkStore) -> list[Device]:
    """Hot-tier devices that can take hot copies now, the roomiest first."""
    ok = [d for d in chunks.hot_devices() if d.placeable]
    return sorted(ok, key=lambda d: -chunks.usable(d))


def _no_hot_device(repo: Repository) -> UserError:
    tiers = ", ".join(f"{d.name} {d.tier}" for d in repo.devices.devices)
    return UserError(f"no online hot-tier device can take hot copies (devices: {tiers}); set "
                     "one with 'modelmanager device set NAME --tier hot'")  # fmt: skip


def _unique_chunks(manifest: Manifest) -> dict[str, int]:
    return {c.id: c.length for f in manifest.files for c in f.chunks}


def pin(
    ws: Workspace, ref: str, *, ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> PinResult:  # fmt: skip
    """Pin the version ``ref`` hot: a hot copy of each chunk (read verified from its pieces)
    on one hot-tier device, then the pin record. Chunks already hot anywhere are kept."""
    ctx = ctx or JobContext()
    repo = ws.repo
    with repo.writer(lock_timeout):
        chunks = repo.chunks
        chunks.refresh()
        manifest = repo.resolve(ref)
        targets = hot_targets(chunks)
        if not targets:
            raise _no_hot_device(repo)
        device = targets[0]
        hot = chunks.hot_devices()
        todo = {cid: n for cid, n in _unique_chunks(manifest).items()
                if not chunks.hot_holders(cid, hot)}  # fmt: skip
        need = sum(todo.values())
        if need > chunks.usable(device):
            raise UserError(
                f"not enough space for the hot copies of {manifest.ref}: they need "
                f"{human_bytes(need)} and {chunks.describe(device)} can take "
                f"{human_bytes(chunks.usable(device))}; nothing was pinned"
            )
        done = written = 0
        with reporting("pin", lambda: f"{written} hot copies; run 'pin' again"):
            for cid, length in todo.items():
                ctx.check()
                chunks.write_hot(device, cid, chunks.get(cid, length))  # verified on read
                written += 1
                done += length
                ctx.report(done, need, cid[:12])
            chunks.flush()
        now = utc_now()
        record = {"version": manifest.seq, "pinned": True, "set": now, "written": now}
        repo.records.write(pin_key(manifest.model, manifest.seq), record)
    return PinResult(manifest.ref, device.name, len(_unique_chunks(manifest)), written, need,
                     Changes(storage=True))  # fmt: skip


def unpin(ws: Workspace, ref: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> str:
    """Unpin the version ``ref`` (its hot copies go at the next ``gc``); returns its ref."""
    repo = ws.repo
    with repo.writer(lock_timeout):
        manifest = repo.resolve(ref)
        if not any(p.model == manifest.model and p.version == manifest.seq for p in pins(repo)):
            raise NotFoundError(f"{manifest.ref} is not pinned")
        now = utc_now()
        record = {"version": manifest.seq, "pinned": False, "set": now, "written": now}
        repo.records.write(pin_key(manifest.model, manifest.seq), record)
    return manifest.ref


def hot_garbage(repo: Repository) -> list[tuple[Device, str, int]]:
    """(device, chunk, bytes) of every hot copy no pinned version needs, on any readable
    device; and every hot copy on a device no longer of the hot tier (loads never read it
    there: 'pin' again puts the version's copies on a hot device)."""
    try:
        keep = pinned_chunks(repo)
    except NotFoundError as e:  # a pinned version's manifest vanished meanwhile
        raise IntegrityError(f"cannot tell which hot copies are pinned ({e})") from None
    out = []
    for d in repo.chunks.readable_devices():
        out += [(d, cid, size) for cid, size in repo.chunks.iter_hot(d)
                if cid not in keep or d.tier != HOT]  # fmt: skip
    return out


def hot_bytes(chunks: PlacedChunkStore) -> dict[str, int]:
    """Bytes of hot copies per device name (readable devices that hold any)."""
    out: dict[str, int] = {}
    for d in chunks.readable_devices():
        total = sum(size for _cid, size in chunks.iter_hot(d))
        if total:
            out[d.name] = total
    return out
