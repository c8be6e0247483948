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
their policy pieces stay. A promotion never demotes a version pinned explicitly, only other
promotions. The plan (:func:`plan_pin`) is computed first and executed as computed.

The hot-tier job (``modelmanager hot-tier``, Maintenance > Apply hot tier…) promotes on its
own: from last uses, versions loaded recently (default the last 7 days) get hot copies and a
record with ``"auto": true, "loaded"`` (an automatic promotion, told from the user's pins);
automatic promotions used least recently are demoted to keep every hot device under its fill
limit, and explicit pins are never demoted for them (:func:`plan_hot_tier`, then
:func:`apply_hot_tier` runs the previewed plan or refuses). ``rm`` marks the pin of each version
it removes unpinned (:func:`release_pin`, ``"removed"``), so records agree with versions.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
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
    auto: bool = False  # promoted by the hot-tier job for a load, not pinned by the user

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.ref, "pinned": self.since, "auto": self.auto}


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
            out.append(Pin(model, seq, str(doc.get("set", "")), doc.get("auto") is True))
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
    return Pin(model, seq, str(doc.get("set", "")), doc.get("auto") is True)


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
    time, which never demotes a version pinned explicitly, only other promotions). Refuses
    (UserError) when even demoting every candidate leaves the hot copies past the fill limit
    or the free space."""
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
            ((p, explicit) for p, explicit in marked if promoted_at is None or not explicit),
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
    """Pin ``ref`` hot because it was loaded (its last use, or now): demotes only automatic
    promotions, least recently used first, never a version pinned explicitly."""
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
        return f"not pinned (demoted {utc_minute(demoted)} UTC for {doc.get('for', '?')})"
    wanted = _unique_chunks(repo.read_manifest(model, seq))
    hot = repo.chunks.hot_devices()
    on: dict[str, int] = {}
    for cid in wanted:
        for d in repo.chunks.hot_holders(cid, hot)[:1]:
            on[d.name] = on.get(d.name, 0) + 1
    where = ", ".join(f"{n} on {name}" for name, n in sorted(on.items())) or "none hot yet"
    since = utc_minute(str(doc.get("set", "")))
    if doc.get("auto") is True:
        loaded = utc_minute(str(doc.get("loaded", "")))
        return (f"promoted hot (loaded {loaded} UTC) since {since} UTC; {sum(on.values())} of "
                f"{len(wanted)} chunks hot ({where})")  # fmt: skip
    return f"pinned hot since {since} UTC; {sum(on.values())} of {len(wanted)} chunks hot ({where})"


def utc_minute(iso: str) -> str:
    """A recorded time to the minute, as shown ("2026-12-01 10:58"; UTC)."""
    return iso[:16].replace("T", " ")


# -- The hot-tier job: promote recently loaded versions, demote least recently used ones ------

#: How recently a version must have been loaded for the hot-tier job to promote it.
DEFAULT_PROMOTE_WITHIN_DAYS = 7.0


@dataclass(frozen=True)
class TierMove:
    """A version the hot-tier job promotes, demotes or leaves out, with its last use."""

    ref: str
    last_use: str
    write_bytes: int = 0  # hot copies written for it (a promotion)
    hot_bytes: int = 0  # bytes of hot copies it needs in all
    drop_bytes: int = 0  # its hot copies dropped (a demotion; shared ones kept are not)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.ref, "last_use": self.last_use, "write_bytes": self.write_bytes,
                "hot_bytes": self.hot_bytes, "drop_bytes": self.drop_bytes}  # fmt: skip


@dataclass(frozen=True)
class DeviceTier:
    """What the hot-tier job does on one hot device, and how full it leaves it."""

    device: Device
    write: tuple[tuple[str, int], ...]  # (chunk, bytes) of hot copies made here
    drop: tuple[tuple[str, int], ...]  # (chunk, bytes) of hot copies deleted here
    hot_before: int  # bytes of hot copies on it now
    limit: int  # bytes its volume may hold filled (fill limit); 0: unknown size
    used: int  # bytes in use on its volume now

    @property
    def write_bytes(self) -> int:
        return sum(n for _c, n in self.write)

    @property
    def drop_bytes(self) -> int:
        return sum(n for _c, n in self.drop)

    @property
    def hot_after(self) -> int:
        return self.hot_before + self.write_bytes - self.drop_bytes

    @property
    def used_after(self) -> int:
        return self.used + self.write_bytes - self.drop_bytes

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device.name, "write": len(self.write),
                "write_bytes": self.write_bytes, "drop": len(self.drop),
                "drop_bytes": self.drop_bytes, "hot_before": self.hot_before,
                "hot_after": self.hot_after, "used": self.used,
                "used_after": self.used_after, "limit": self.limit}  # fmt: skip


@dataclass(frozen=True)
class HotTierPlan:
    """The hot-tier job's plan, computed before anything is done and executed as computed.

    ``promote``: recently loaded unpinned versions given hot copies (most recent first);
    ``demote``: automatic promotions dropped to stay under the fill limits (least recent
    first); ``left_out``: recently loaded versions that do not fit even so; ``kept``: pinned
    versions that stay hot (explicit pins always do)."""

    promote: tuple[TierMove, ...]
    demote: tuple[TierMove, ...]
    left_out: tuple[TierMove, ...]
    kept: tuple[str, ...]
    devices: tuple[DeviceTier, ...]
    since: str  # loads at or after this time count as recent
    writes: dict[str, tuple[tuple[str, str, int], ...]] = field(default_factory=dict)
    released: tuple[str, ...] = ()  # pinned records of removed versions, marked unpinned

    @property
    def changes_anything(self) -> bool:
        return bool(self.promote or self.demote or self.released
                    or any(d.write or d.drop for d in self.devices))  # fmt: skip

    def decisions(self) -> tuple[object, ...]:
        """What the plan does, without the volumes' byte counts (which move with anything
        else written there): a run refuses when these differ from the preview's."""
        return (tuple(m.ref for m in self.promote), tuple(m.ref for m in self.demote),
                tuple((d.device.name, frozenset(c for c, _n in d.write),
                       frozenset(c for c, _n in d.drop)) for d in self.devices))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """``hot-tier --dry-run --json``."""
        return {"since": self.since, "promote": [m.to_json() for m in self.promote],
                "demote": [m.to_json() for m in self.demote],
                "left_out": [m.to_json() for m in self.left_out], "kept": list(self.kept),
                "devices": [d.to_json() for d in self.devices],
                "released": list(self.released)}  # fmt: skip

    def lines(self) -> list[str]:
        """The plan in sentences, for the CLI's dry run and the window's preview."""
        out = []
        for m in self.promote:
            out.append(f"Promote {m.ref} (loaded {utc_minute(m.last_use)} UTC): "
                       f"{human_bytes(m.write_bytes)} of new hot copies")  # fmt: skip
        for m in self.demote:
            out.append(f"Demote {m.ref} (last used {utc_minute(m.last_use)} UTC): "
                       f"{human_bytes(m.drop_bytes)} of its hot copies go, its pieces stay, so "
                       "it still loads")  # fmt: skip
        for m in self.left_out:
            out.append(f"Leave {m.ref} (loaded {utc_minute(m.last_use)} UTC) cold: its "
                       f"{human_bytes(m.hot_bytes)} do not fit under the fill limit")  # fmt: skip
        for d in self.devices:
            limit = f" of {human_bytes(d.limit)} allowed" if d.limit else ""
            out.append(f"{d.device.name}: copy {len(d.write)} chunks "
                       f"({human_bytes(d.write_bytes)}), drop {len(d.drop)} "
                       f"({human_bytes(d.drop_bytes)}); hot copies {human_bytes(d.hot_before)} "
                       f"-> {human_bytes(d.hot_after)}, volume {human_bytes(d.used)} -> "
                       f"{human_bytes(d.used_after)}{limit}")  # fmt: skip
        for ref in self.released:
            out.append(f"Mark the pin of removed version {ref} unpinned")
        return out


def recent_since(within_days: float) -> str:
    """The time ``within_days`` ago, as :func:`utc_now` writes times (they compare as text)."""
    at = time.time() - within_days * 86400
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"


def _recent_loads(
    repo: Repository, since: str, pinned: set[str]
) -> list[tuple[str, str, int, str]]:
    """(ref, model, version, last use) of versions loaded at or after ``since`` that exist and
    are not pinned."""
    out = []
    for ref, at in last_uses(repo).items():
        model, _, seq = ref.rpartition("@")
        if at < since or ref in pinned or not seq.isdigit() or not model:
            continue
        try:
            exists = int(seq) in repo.version_numbers(model)
        except (UserError, ValueError):
            exists = False  # a name that is not (or no longer) a model here
        if exists:
            out.append((ref, model, int(seq), at))
    return out


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


def plan_hot_tier(
    repo: Repository, *, within_days: float = DEFAULT_PROMOTE_WITHIN_DAYS, since: str | None = None
) -> HotTierPlan:
    """Plan the hot tier from last uses: explicit pins stay; automatic promotions and versions
    loaded since ``since`` (default: ``within_days`` ago) are taken most recent first, each
    kept or promoted when its hot copies fit every hot device's fill limit, else demoted (an
    automatic promotion) or left cold. Hot copies no kept version needs are dropped."""
    chunks = repo.chunks
    since = since or recent_since(within_days)
    hot = chunks.hot_devices()
    placeable = [d for d in hot if d.placeable]
    if not placeable:
        raise _no_hot_device(repo)
    held = {d.id: dict(chunks.iter_hot(d)) for d in hot}
    free: dict[str, float] = {}
    limits: dict[str, tuple[int, int]] = {}
    for d in hot:
        space = capacity_of(chunks.stores[d.id])
        hot_now = sum(held[d.id].values())
        if space is None or not d.placeable:
            free[d.id] = float("inf") if not d.placeable else chunks.usable(d) + hot_now
            limits[d.id] = (0, hot_now)
            continue
        limit = int(space.total * fill_limit(repo))
        used = space.total - space.free
        # What hot copies may fill: the limit less everything else on the volume, and no
        # more than the device can take.
        free[d.id] = min(limit - (used - hot_now), chunks.usable(d) + hot_now)
        limits[d.id] = (limit, used)
    keep: dict[str, list[str]] = {}  # chunk -> device ids keeping (or getting) a hot copy
    writes: dict[str, tuple[tuple[str, str, int], ...]] = {}
    by_id = {d.id: d for d in hot}

    def take(wanted: dict[str, int], *, force: bool) -> tuple[tuple[str, str, int], ...] | None:
        trial = dict(free)
        new: dict[str, list[str]] = {}
        made: list[tuple[str, str, int]] = []
        for cid, n in sorted(wanted.items()):
            if cid in keep:
                continue
            holders = [d.id for d in hot if cid in held[d.id]]
            if not holders:
                if force:
                    continue  # an explicit pin's missing copy: 'pin' again writes it
                target = max(placeable, key=lambda d: (trial[d.id], d.name))
                holders = [target.id]
                made.append((cid, target.id, n))
            for dev in holders:
                trial[dev] -= n
            new[cid] = holders
        touched = {dev for hs in new.values() for dev in hs}
        if not force and any(trial[dev] < 0 for dev in touched):
            return None
        free.update(trial)
        keep.update(new)
        return tuple(made)

    uses = last_uses(repo)
    pinned = pins(repo, strict=True)
    kept: list[str] = []
    candidates: list[tuple[str, str, str, int, bool]] = []  # (use, ref, model, seq, promoted)
    for p in pinned:
        if _explicit(repo, p):
            take(_unique_chunks(repo.read_manifest(p.model, p.version)), force=True)
            kept.append(p.ref)
        else:
            candidates.append((_use_of(p, uses), p.ref, p.model, p.version, False))
    for ref, model, seq, at in _recent_loads(repo, since, {p.ref for p in pinned}):
        candidates.append((at, ref, model, seq, True))
    promote: list[TierMove] = []
    demote: list[TierMove] = []
    demoted_chunks: dict[str, dict[str, int]] = {}
    left_out: list[TierMove] = []
    for at, ref, model, seq, new in sorted(candidates, key=lambda c: (c[0], c[1]), reverse=True):
        wanted = _unique_chunks(repo.read_manifest(model, seq))
        made = take(wanted, force=False)
        total = sum(wanted.values())
        if made is None:
            (left_out if new else demote).append(TierMove(ref, at, 0, total))
            demoted_chunks[ref] = wanted
        elif new:
            writes[ref] = tuple((c, by_id[dev].name, n) for c, dev, n in made)
            promote.append(TierMove(ref, at, sum(n for _c, _d, n in made), total))
        else:
            kept.append(ref)
    devices = []
    for d in hot:
        write = tuple((c, n) for ws in writes.values() for c, name, n in ws if name == d.name)
        drop = tuple(sorted((c, n) for c, n in held[d.id].items() if c not in keep))
        if not d.placeable:
            drop = ()
        limit, used = limits[d.id]
        devices.append(DeviceTier(d, write, drop, sum(held[d.id].values()), limit, used))
    dropped = {c for d in devices for c, _n in d.drop}
    demote = [replace(m, drop_bytes=sum(n for c, n in demoted_chunks[m.ref].items()
                                        if c in dropped)) for m in demote]  # fmt: skip
    released = tuple(f"{m}@{s}" for m, s in removed_pins(repo))
    return HotTierPlan(tuple(promote), tuple(reversed(demote)), tuple(left_out),
                       tuple(sorted(kept)), tuple(devices), since, writes,
                       released)  # fmt: skip


@dataclass(frozen=True)
class HotTierResult:
    """What the hot-tier job did."""

    plan: HotTierPlan
    written: int  # hot copies written
    written_bytes: int
    dropped: int
    dropped_bytes: int
    changes: Changes = field(default_factory=Changes)

    def to_json(self) -> dict[str, Any]:
        return {"promoted": [m.ref for m in self.plan.promote],
                "demoted": [m.ref for m in self.plan.demote],
                "left_out": [m.ref for m in self.plan.left_out],
                "written": self.written, "written_bytes": self.written_bytes,
                "dropped": self.dropped, "dropped_bytes": self.dropped_bytes,
                "released": list(self.plan.released)}  # fmt: skip


def apply_hot_tier(
    ws: Workspace, *, previewed: HotTierPlan | None = None,
    within_days: float = DEFAULT_PROMOTE_WITHIN_DAYS, ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> HotTierResult:  # fmt: skip
    """Run the hot-tier job: the plan is computed again under the writer lock (with the
    preview's notion of "recent") and refused (DoubtError) when it differs from ``previewed``.
    Write order: demotion records, then drops, then for each promotion its verified hot copies
    and last its record (``"auto": true``): a crash or cancel leaves garbage, never a pin
    without its copies."""
    given, ctx = ctx, ctx or JobContext()
    repo = ws.repo
    with repo.writer(lock_timeout, ctx=given):
        chunks = repo.chunks
        chunks.refresh()
        since = previewed.since if previewed is not None else None
        plan = plan_hot_tier(repo, within_days=within_days, since=since)
        if previewed is not None and plan.decisions() != previewed.decisions():
            raise DoubtError(
                "the hot tier's plan changed since it was previewed (a load, pin or device "
                "meanwhile); nothing was done: look at the plan again"
            )
        for model, seq in removed_pins(repo):
            release_pin(repo, model, seq)
        now = utc_now()
        why = ", ".join(m.ref for m in plan.promote) or "the fill limit"
        for m in plan.demote:  # records first: a crash leaves garbage, never a broken pin
            name_, _, number = m.ref.rpartition("@")
            repo.records.write(pin_key(name_, int(number)), {
                "version": int(number), "pinned": False, "set": now, "written": now,
                "demoted": now, "for": why, "auto": True,
            })  # fmt: skip
        total = sum(d.write_bytes for d in plan.devices)
        done = written = dropped = freed = 0
        names = {d.device.name: d.device for d in plan.devices}
        with reporting("hot tier", lambda: f"{written} hot copies written; run it again"):
            for d in plan.devices:
                for cid, n in d.drop:
                    ctx.check()
                    chunks.delete_hot(d.device, cid)
                    dropped += 1
                    freed += n
            for m in plan.promote:
                name_, _, number = m.ref.rpartition("@")
                for cid, name, n in plan.writes.get(m.ref, ()):
                    ctx.check()
                    chunks.write_hot(names[name], cid, chunks.get(cid, n))  # verified on read
                    written += 1
                    done += n
                    ctx.report(done, total, f"{m.ref} {cid[:12]}")
                chunks.flush()
                stamp = utc_now()
                repo.records.write(pin_key(name_, int(number)), {
                    "version": int(number), "pinned": True, "set": stamp, "written": stamp,
                    "auto": True, "loaded": m.last_use,
                })  # fmt: skip
            chunks.flush()
    return HotTierResult(plan, written, done, dropped, freed,
                         Changes(storage=plan.changes_anything))  # fmt: skip
