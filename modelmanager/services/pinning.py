"""Pinning a version hot: one plain copy of each of its chunks on a hot-tier device.

A pinned version keeps, beside its policy's pieces (unchanged, on any tier), a hot copy of
every chunk: ``hot/<id[:2]>/<id>`` on a hot-tier device, the chunk's plain bytes, so a load
reads it straight into place with no decode and checks it by hashing like any piece
(core/chunks/fetch.py). Hot copies never count toward a policy. Which versions are pinned, the
fill limit and last uses are records (services/pin_records.py). ``gc`` deletes the hot copies
no pinned version needs (:func:`hot_garbage`).

A hot device is filled by pins to at most a fill limit (a share of its volume, default
:data:`~modelmanager.services.pin_records.DEFAULT_FILL_LIMIT`). A pin or promotion that would
pass it first drops hot copies no pinned version needs, then demotes the least recently used
pinned versions: their records say ``"pinned": false, "demoted"`` and their hot copies go,
their policy pieces stay. A promotion never demotes a version pinned explicitly, only other
promotions. The plan (:func:`plan_pin`) is computed first and executed as computed. The
repository-wide hot-tier job is services/hot_tier.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelmanager.core.chunks.placed import HOT, PlacedChunkStore
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import Device
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT, Repository
from modelmanager.core.repo.versions import utc_now
from modelmanager.core.storage import BlobNotFound
from modelmanager.core.storage.base import capacity_of
from modelmanager.core.units import human_bytes
from modelmanager.errors import DoubtError, IntegrityError, NotFoundError, UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.pin_records import (
    fill_limit,
    hot_targets,
    last_use_of,
    last_uses,
    no_hot_device,
    pin_key,
    pinned_chunks,
    pinned_explicitly,
    pins,
    unique_chunks,
    utc_minute,
)
from modelmanager.services.safety import reporting


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


def plan_pin(repo: Repository, ref: str, *, promoted_at: str | None = None) -> PinPlan:
    """Plan pinning ``ref`` hot (``promoted_at``: an automatic promotion for a load at that
    time, which never demotes a version pinned explicitly, only other promotions). Refuses
    (UserError) when even demoting every candidate leaves the hot copies past the fill limit
    or the free space."""
    chunks = repo.chunks
    manifest = repo.resolve(ref)
    targets = hot_targets(chunks)
    if not targets:
        raise no_hot_device(repo)
    device = targets[0]
    wanted = unique_chunks(manifest)
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
        marked = [(p, pinned_explicitly(repo, p)) for p in others]
        candidates = sorted(
            ((p, explicit) for p, explicit in marked if promoted_at is None or not explicit),
            key=lambda c: last_use_of(c[0], uses),
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
            demote.append(Demotion(p.ref, last_use_of(p, uses), explicit))
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
    wanted = unique_chunks(repo.read_manifest(model, seq))
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
