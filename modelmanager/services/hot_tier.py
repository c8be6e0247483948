"""The hot-tier job: promote recently loaded versions, demote the least recently used ones.

The hot-tier job (``modelmanager hot-tier``, Maintenance > Apply hot tier…) pins on its own
(services/pinning.py keeps a version hot by hand): from last uses, versions loaded recently
(default the last 7 days) get hot copies and a record with ``"auto": true, "loaded"`` (an
automatic promotion, told from the user's pins); automatic promotions used least recently are
demoted to keep every hot device under its fill limit, and explicit pins are never demoted for
them (:func:`plan_hot_tier`, then :func:`apply_hot_tier` runs the previewed plan or refuses).
It also marks unpinned the pin records of removed versions (services/pin_records.py
:func:`~modelmanager.services.pin_records.release_pin`), so records agree with versions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import Device
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT, Repository
from modelmanager.core.repo.versions import utc_now
from modelmanager.core.storage.base import capacity_of
from modelmanager.core.units import human_bytes
from modelmanager.errors import DoubtError, UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.pin_records import (
    fill_limit,
    last_use_of,
    last_uses,
    no_hot_device,
    pin_key,
    pinned_explicitly,
    pins,
    release_pin,
    removed_pins,
    unique_chunks,
    utc_minute,
)
from modelmanager.services.safety import reporting

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
        raise no_hot_device(repo)
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
        if pinned_explicitly(repo, p):
            take(unique_chunks(repo.read_manifest(p.model, p.version)), force=True)
            kept.append(p.ref)
        else:
            candidates.append((last_use_of(p, uses), p.ref, p.model, p.version, False))
    for ref, model, seq, at in _recent_loads(repo, since, {p.ref for p in pinned}):
        candidates.append((at, ref, model, seq, True))
    promote: list[TierMove] = []
    demote: list[TierMove] = []
    demoted_chunks: dict[str, dict[str, int]] = {}
    left_out: list[TierMove] = []
    for at, ref, model, seq, new in sorted(candidates, key=lambda c: (c[0], c[1]), reverse=True):
        wanted = unique_chunks(repo.read_manifest(model, seq))
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
