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

A hot device is filled by pins to at most a fill limit (a share of its volume, ``tiers.json``,
default :data:`DEFAULT_FILL_LIMIT`). A pin or promotion that would pass it first drops hot
copies no pinned version needs, then demotes the least recently used pinned versions (last use
is the later of the pin and the last load, ``hot-use.json`` on main, a hint like
``changes.json``): their records say ``"pinned": false, "demoted"`` and their hot copies go,
their policy pieces stay. A promotion never demotes a version pinned explicitly after the
promoted version's use. The plan (:func:`plan_pin`) is computed first and executed as computed.
"""

from __future__ import annotations

import contextlib
import json
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
from modelmanager.core.storage.atomic import atomic_write
from modelmanager.core.storage.base import capacity_of
from modelmanager.core.units import human_bytes
from modelmanager.errors import DoubtError, IntegrityError, NotFoundError, UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.safety import reporting

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
    demoted: tuple[str, ...] = ()  # pinned versions demoted to stay under the fill limit
    freed_bytes: int = 0  # hot copies deleted on the device for it

    def to_json(self) -> dict[str, Any]:
        return {"version": self.ref, "device": self.device, "chunks": self.chunks,
                "written": self.written, "written_bytes": self.written_bytes,
                "demoted": list(self.demoted), "freed_bytes": self.freed_bytes}  # fmt: skip


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


def pin_state(repo: Repository, model: str, seq: int) -> Pin | None:
    """The pin of one version (one record read), or None when it is not pinned."""
    try:
        doc = repo.records.read(pin_key(model, seq))
    except (BlobNotFound, IntegrityError):
        return None
    if doc.get("pinned") is not True or seq not in repo.version_numbers(model):
        return None
    return Pin(model, seq, str(doc.get("set", "")))


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
    """Record that ``model@seq`` was loaded now (best effort: a read-only main keeps no hint)."""
    uses = last_uses(repo)
    uses[f"{model}@{seq}"] = utc_now()
    with contextlib.suppress(OSError):  # the hint is lost, never the load
        atomic_write(repo.root / USE_FILE, json.dumps(uses, sort_keys=True).encode())


@dataclass(frozen=True)
class Demotion:
    """A pinned version whose hot copies a pin drops to stay under the fill limit."""

    ref: str
    last_use: str
    explicit: bool


@dataclass(frozen=True)
class PinPlan:
    """What a pin writes and drops on its hot device, computed before anything is done."""

    ref: str
    model: str
    version: int
    device: Device
    chunks: int  # the version's distinct chunks
    write: dict[str, int]  # chunk -> bytes of the hot copies to write
    demote: tuple[Demotion, ...]  # oldest use first
    drop: tuple[tuple[str, int], ...]  # (chunk, bytes) of hot copies deleted on the device
    limit: int  # bytes the device may hold filled (its fill limit); 0: unknown size
    used: int  # bytes in use on the device's volume now

    @property
    def write_bytes(self) -> int:
        return sum(self.write.values())

    @property
    def freed(self) -> int:
        return sum(n for _c, n in self.drop)

    def to_json(self) -> dict[str, Any]:
        """``pin --dry-run --json``."""
        return {"version": self.ref, "device": self.device.name, "chunks": self.chunks,
                "write": len(self.write), "write_bytes": self.write_bytes,
                "demote": [d.ref for d in self.demote], "drop": len(self.drop),
                "freed_bytes": self.freed, "limit": self.limit, "used": self.used}  # fmt: skip

    def text(self) -> str:
        """The plan in a sentence, for the CLI's dry run and the window's question."""
        out = (f"Pinning {self.ref} writes {len(self.write)} hot copies "
               f"({human_bytes(self.write_bytes)}) on {self.device.name}")  # fmt: skip
        if self.demote:
            out += (f" and demotes {', '.join(d.ref for d in self.demote)} (least recently "
                    f"used), dropping {human_bytes(self.freed)} of hot copies; their pieces "
                    "stay, so they still load")  # fmt: skip
        elif self.drop:
            out += f", after deleting {human_bytes(self.freed)} of hot copies no pin needs"
        return out


def _use_of(p: Pin, uses: dict[str, str]) -> str:
    return max(p.since, uses.get(p.ref, ""))


def _explicit(repo: Repository, p: Pin) -> bool:
    try:
        return repo.records.read(pin_key(p.model, p.version)).get("auto") is not True
    except (BlobNotFound, IntegrityError):
        return True  # unknown: treated as the user's


def plan_pin(repo: Repository, ref: str, *, promoted_at: str | None = None) -> PinPlan:
    """Plan pinning ``ref`` hot (``promoted_at``: an automatic promotion for a load at that
    time, which never demotes a version pinned explicitly later). Refuses (UserError) when even
    demoting every candidate leaves the hot copies past the fill limit or the free space."""
    chunks = repo.chunks
    manifest = repo.resolve(ref)
    targets = hot_targets(chunks)
    if not targets:
        raise _no_hot_device(repo)
    device = targets[0]
    wanted = _unique_chunks(manifest)
    hot = chunks.hot_devices()
    todo = {cid: n for cid, n in wanted.items() if not chunks.hot_holders(cid, hot)}
    need = sum(todo.values())
    space = capacity_of(chunks.stores[device.id])
    limit = int(space.total * fill_limit(repo)) if space is not None else 0
    used = space.total - space.free if space is not None else 0
    room = chunks.usable(device)
    over = max(used + need - limit if limit else 0, need - room)
    demote: list[Demotion] = []
    drop: list[tuple[str, int]] = []
    if over > 0:
        held = dict(chunks.iter_hot(device))
        uses = last_uses(repo)
        others = [p for p in pins(repo, strict=True)
                  if (p.model, p.version) != (manifest.model, manifest.seq)]  # fmt: skip
        marked = [(p, _explicit(repo, p)) for p in others]
        candidates = sorted(
            ((p, explicit) for p, explicit in marked
             if promoted_at is None or not (explicit and p.since > promoted_at)),
            key=lambda c: _use_of(c[0], uses),
        )  # fmt: skip
        keep_pins = {(p.model, p.version) for p in others}
        needs = {(p.model, p.version): repo.read_manifest(p.model, p.version).chunk_ids()
                 for p in others}  # fmt: skip

        def freeable() -> list[tuple[str, int]]:
            keep = set(wanted).union(*(needs[k] for k in keep_pins))
            return sorted((c, n) for c, n in held.items() if c not in keep)

        drop = freeable()  # hot copies no pinned version needs come first
        for p, explicit in candidates:
            if sum(n for _c, n in drop) >= over:
                break
            keep_pins.discard((p.model, p.version))
            demote.append(Demotion(p.ref, _use_of(p, uses), explicit))
            drop = freeable()
        if sum(n for _c, n in drop) < over:
            cap = (f"its fill limit {human_bytes(limit)} ({fill_limit(repo):.0%})" if limit
                   else "its free space")  # fmt: skip
            raise UserError(
                f"the hot copies of {manifest.ref} ({human_bytes(need)}) do not fit "
                f"{chunks.describe(device)} under {cap}, even after demoting "
                f"{len(demote)} least recently used pinned "
                f"version{'s' if len(demote) != 1 else ''}; nothing was pinned (raise it with "
                "'modelmanager pin --fill-limit SHARE', or add a hot-tier device)"
            )
    return PinPlan(manifest.ref, manifest.model, manifest.seq, device, len(wanted), todo,
                   tuple(demote), tuple(drop), limit, used)  # fmt: skip


def pin(
    ws: Workspace, ref: str, *, ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT, promoted_at: str | None = None,
    previewed: PinPlan | None = None,
) -> PinResult:  # fmt: skip
    """Pin the version ``ref`` hot: a hot copy of each chunk (read verified from its pieces)
    on one hot-tier device, then the pin record. Chunks already hot anywhere are kept; past the
    fill limit the least recently used pinned versions are demoted first (:func:`plan_pin`).
    With ``previewed`` (the plan shown to the user), a plan that now demotes other versions
    is refused (DoubtError) rather than executed."""
    given, ctx = ctx, ctx or JobContext()  # the caller's own ctx is watched while waiting
    repo = ws.repo
    with repo.writer(lock_timeout, ctx=given):
        chunks = repo.chunks
        chunks.refresh()
        plan = plan_pin(repo, ref, promoted_at=promoted_at)
        shown_refs = {d.ref for d in previewed.demote} if previewed is not None else None
        if shown_refs is not None and {d.ref for d in plan.demote} - shown_refs:
            raise DoubtError(
                f"pinning {plan.ref} now demotes {', '.join(d.ref for d in plan.demote)}, "
                "not what was previewed (something changed meanwhile); nothing was done: "
                "look at the plan again"
            )
        device, need = plan.device, plan.write_bytes
        now = utc_now()
        for d in plan.demote:  # the records first: a crash leaves garbage, never a broken pin
            model, _, seq = d.ref.rpartition("@")
            repo.records.write(pin_key(model, int(seq)), {
                "version": int(seq), "pinned": False, "set": now, "written": now,
                "demoted": now, "for": plan.ref,
            })  # fmt: skip
        done = written = 0
        with reporting("pin", lambda: f"{written} hot copies; run 'pin' again"):
            for cid, _n in plan.drop:
                ctx.check()
                chunks.delete_hot(device, cid)
            for cid, length in plan.write.items():
                ctx.check()
                chunks.write_hot(device, cid, chunks.get(cid, length))  # verified on read
                written += 1
                done += length
                ctx.report(done, need, cid[:12])
            chunks.flush()
        record: dict[str, Any] = {"version": plan.version, "pinned": True, "set": now,
                                  "written": utc_now()}  # fmt: skip
        if promoted_at is not None:
            record["auto"] = True
        repo.records.write(pin_key(plan.model, plan.version), record)
    return PinResult(plan.ref, device.name, plan.chunks, written, need,
                     Changes(storage=True), tuple(d.ref for d in plan.demote),
                     plan.freed)  # fmt: skip


def promote(ws: Workspace, ref: str, *, ctx: JobContext | None = None,
            lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> PinResult:  # fmt: skip
    """Pin ``ref`` hot because it was loaded (its last use, or now): demotes only versions
    used less recently and never one pinned explicitly after that use."""
    manifest = ws.repo.resolve(ref)
    at = last_uses(ws.repo).get(manifest.ref) or utc_now()
    return pin(ws, manifest.ref, ctx=ctx, lock_timeout=lock_timeout, promoted_at=at)


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


def hot_bytes_of(chunks: PlacedChunkStore, device: Device) -> int:
    """Bytes of hot copies on one device (0 when it holds none or cannot be read): the
    Hot column of ``device ls`` and the Devices tab."""
    try:
        return sum(size for _cid, size in chunks.iter_hot(device))
    except OSError:
        return 0


def hot_bytes(chunks: PlacedChunkStore) -> dict[str, int]:
    """Bytes of hot copies per device name (readable devices that hold any)."""
    out: dict[str, int] = {}
    for d in chunks.readable_devices():
        total = hot_bytes_of(chunks, d)
        if total:
            out[d.name] = total
    return out


def pin_summary(repo: Repository, model: str, seq: int) -> str:
    """One line saying whether a version is kept hot, for Overview: "pinned hot since …, N of
    its M chunks hot on DEVICE", or "not pinned" (a demoted one says so)."""
    try:
        doc = repo.records.read(pin_key(model, seq))
    except BlobNotFound:
        return "not pinned"
    except IntegrityError:
        return "pin record unreadable (scrub, then repair)"
    if doc.get("pinned") is not True:
        demoted = doc.get("demoted")
        if not isinstance(demoted, str):
            return "not pinned"
        return f"not pinned (demoted {_minute(demoted)} UTC for {doc.get('for', '?')})"
    wanted = _unique_chunks(repo.read_manifest(model, seq))
    hot = repo.chunks.hot_devices()
    on: dict[str, int] = {}
    for cid in wanted:
        for d in repo.chunks.hot_holders(cid, hot)[:1]:
            on[d.name] = on.get(d.name, 0) + 1
    where = ", ".join(f"{n} on {name}" for name, n in sorted(on.items())) or "none hot yet"
    since = _minute(str(doc.get("set", "")))
    return f"pinned hot since {since} UTC; {sum(on.values())} of {len(wanted)} chunks hot ({where})"


def _minute(iso: str) -> str:
    return iso[:16].replace("T", " ")
