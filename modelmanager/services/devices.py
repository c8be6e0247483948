"""Registering, listing and removing storage devices (policies and codecs: services/policies.py).

Composition: draining a device runs the engine's move plans
(:mod:`modelmanager.core.redundancy.moves`); forgetting one is planned by services/device_plans.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.ids import is_content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import (
    DRAINING,
    MAIN,
    OFFLINE,
    ONLINE,
    Device,
    check_device_settings,
    identity_matches,
    new_device,
    read_identity,
    write_identity,
)
from modelmanager.core.redundancy.moves import MovePlan, execute_moves, plan_moves
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.core.repo.versions import utc_now
from modelmanager.core.storage import capacity_of
from modelmanager.core.units import human_bytes
from modelmanager.errors import ModelManagerError, UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.device_plans import (
    ForgetPlan,
    plan_forget,
    shared_file_systems,
    sharing_with,
)
from modelmanager.services.pinning import hot_bytes_of
from modelmanager.services.safety import refuse_on_doubt, reporting


@dataclass(frozen=True)
class DeviceInfo:
    """A device as ``device ls`` shows it."""

    device: Device
    root: Path
    available: bool
    capacity: int | None
    free: int | None
    used: int
    pieces: int
    chunks: int
    #: Other devices on this one's file system: copies on them are not independent.
    shares_with: tuple[str, ...] = ()
    #: Bytes of pinned versions' uncompressed hot copies (beside the policy's pieces).
    hot: int = 0

    @property
    def status(self) -> str:
        if self.device.state != ONLINE:
            return self.device.state
        return "online" if self.available else "missing"

    def to_json(self) -> dict[str, object]:
        d = self.device
        return {"name": d.name, "id": d.id, "path": str(self.root), "weight": d.weight,
                "tier": d.tier, "state": self.status, "capacity": self.capacity,
                "free": self.free, "used": self.used, "pieces": self.pieces,
                "chunks": self.chunks, "hot_bytes": self.hot,
                "shares_file_system_with": list(self.shares_with)}  # fmt: skip


@dataclass(frozen=True)
class DeviceChange:
    """A device added or changed: the device as saved, whether an existing device folder was
    recognised (add), the other devices on its file system (not independent copies), and
    what the views must refresh (the devices' survey: storage)."""

    device: Device
    recognised: bool = False
    changes: Changes = field(default_factory=lambda: Changes(storage=True))
    shares_with: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        d = self.device
        return {"name": d.name, "id": d.id, "path": d.path, "weight": d.weight, "tier": d.tier,
                "state": d.state, "recognised": self.recognised,
                "shares_file_system_with": list(self.shares_with)}  # fmt: skip

    def sharing_text(self) -> str:
        """The warning when the device shares a file system with others, or ""."""
        if not self.shares_with:
            return ""
        return (f"{self.device.name} is on the same file system as "
                f"{', '.join(self.shares_with)}: copies on them are not independent (one "
                "disk lost loses them all); use a folder on another disk for "
                "redundancy")  # fmt: skip


def list_devices(ws: Workspace) -> list[DeviceInfo]:
    """Every device with capacity, free space and what it holds (walks its pieces)."""
    chunks = ws.repo.chunks
    groups = shared_file_systems(ws)
    out = []
    for d in ws.repo.devices.devices:
        root = d.root(ws.repo.root)
        # Looked at now, not the chunk store's cached answer: a disk that just died shows so.
        mounted = root.is_dir() and (d.path == "." or identity_matches(root, d, ws.repo.config.id))
        used = pieces = 0
        ids: set[str] = set()
        capacity = free = None
        if mounted:
            for p in chunks.iter_pieces(d):
                used += p.size
                pieces += 1
                ids.add(p.chunk_id)
            space = capacity_of(chunks.stores[d.id])
            if space is not None:
                capacity, free = space.total, space.free
        shares = next((tuple(n for n in g if n != d.name) for g in groups if d.name in g), ())
        hot = hot_bytes_of(chunks, d) if mounted else 0
        out.append(DeviceInfo(d, root, mounted and d.state != OFFLINE, capacity, free, used,
                              pieces, len(ids), shares, hot))  # fmt: skip
    return out


def add_device(
    ws: Workspace,
    path: Path,
    *,
    name: str | None = None,
    weight: float = 1.0,
    tier: str = "hot",
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> DeviceChange:
    """Register a folder as a device; ``recognised`` when it already was one of ours.

    A folder that already is a device of this repository (a disk remounted at a new path, a
    device removed earlier, or one the device list lost) is recognised by its identity file
    and registered again under its own id, with its pieces; so is a folder without identity
    that holds pieces this repository's versions use. One of another repository, or holding
    anything else, is refused. No message ever asks to empty a folder: it may hold pieces.
    """
    repo = ws.repo
    root = Path(path).absolute()
    with repo.writer(lock_timeout):
        if root == repo.root or repo.root in root.parents:
            raise UserError("a device cannot be inside the repository folder", path=root)
        identity = read_identity(root) if root.is_dir() else None
        if identity is not None:
            if identity.get("repository_id") != repo.config.id:
                raise UserError(
                    f"folder is a device of another repository ({identity.get('repository_id')})"
                    "; add it to that repository, or choose another folder",
                    path=root,
                )
            known = repo.devices.by_id(str(identity.get("device_id")))
            if known is None:  # removed earlier, or the device list lost it: its pieces count
                known = _former_device(ws, root, identity, name, weight, tier)
            moved = replace(known, path=str(root))
            repo.save_devices(repo.devices.with_device(moved))
            return DeviceChange(moved, True, shares_with=sharing_with(ws, moved.name))
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            ours, theirs = _pieces_in(ws, root) if root.is_dir() else (0, 0)
            if not ours:
                held = f"holds {theirs} chunk pieces no version here uses, " if theirs else ""
                raise UserError(
                    f"folder is not empty and is not a ModelManager device ({held}nothing of "
                    "this repository); choose an empty or new folder",
                    path=root,
                )
            # Pieces of this repository whose identity file is gone: register it, keep them.
            device = new_device(name or _default_name(root), str(root), weight, tier, utc_now())
            write_identity(root, device, repo.config.id)
            repo.save_devices(repo.devices.with_device(device))
            return DeviceChange(device, True, shares_with=sharing_with(ws, device.name))
        device = new_device(name or _default_name(root), str(root), weight, tier, utc_now())
        devices = repo.devices.with_device(device)
        root.mkdir(parents=True, exist_ok=True)
        write_identity(root, device, repo.config.id)
        repo.save_devices(devices)
        return DeviceChange(device, False, shares_with=sharing_with(ws, device.name))


def _former_device(
    ws: Workspace, root: Path, identity: dict[str, object], name: str | None, weight: float,
    tier: str,
) -> Device:  # fmt: skip
    """The device an identity file of this repository names, when the device list does not
    have it: registered again under its own id, so its identity and pieces stay valid."""
    was = identity.get("name")
    chosen = name or (was if isinstance(was, str) and was else _default_name(root))
    if any(d.name == chosen for d in ws.repo.devices.devices):
        raise UserError(
            f"folder holds device {chosen!r} of this repository, and another device has that "
            "name now; add it again with --name NEW_NAME (its pieces are kept)",
            path=root,
        )
    check_device_settings(chosen, weight, tier)
    return Device(str(identity.get("device_id")), chosen, str(root), float(weight), tier,
                  ONLINE, utc_now())  # fmt: skip


def _pieces_in(ws: Workspace, root: Path) -> tuple[int, int]:
    """(pieces this repository's versions use, other pieces) in a folder's chunks/ and
    fragments/ (names only: nothing is read)."""
    store = ws.repo.blob_stores(root)
    names = [key.rsplit("/", 1)[-1] for key, _size in store.list("chunks")]
    names += [key.rsplit("/", 1)[-1].partition(".")[0] for key, _size in store.list("fragments")]
    ids = [n for n in names if is_content_id(n)]
    if not ids:
        return 0, 0
    used: set[str] = set()
    for key, _size in ws.repo.manifest_keys():
        try:
            used |= ws.repo.read_manifest_key(key).chunk_ids()
        except ModelManagerError:
            continue
    ours = sum(1 for c in ids if c in used)
    return ours, len(ids) - ours


def _default_name(root: Path) -> str:
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in root.name)[:64]
    return name or "device"


def set_device(
    ws: Workspace,
    name: str,
    *,
    state: str | None = None,
    weight: float | None = None,
    tier: str | None = None,
    rename: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> DeviceChange:
    """Change a device's state (online/offline), weight, tier or name.

    A renamed device keeps its id (placement and its pieces do not change); its identity
    file is rewritten with the new name when it is mounted.
    """
    if state not in (None, ONLINE, OFFLINE):
        raise UserError(f"a device can be set online or offline, not {state!r}")
    repo = ws.repo
    with repo.writer(lock_timeout):
        d = repo.devices.get(name)
        if rename is not None and rename != d.name and MAIN in (d.name, rename):
            raise UserError("'main' is the repository folder's own device: it cannot be "
                            "renamed, nor can another device take its name")  # fmt: skip
        changed = replace(
            d,
            name=rename or d.name,
            state=state or d.state,
            weight=float(weight) if weight is not None else d.weight,
            tier=tier or d.tier,
        )
        check_device_settings(changed.name, changed.weight, changed.tier)
        devices = repo.devices.with_device(changed)  # refuses a name already taken
        if changed.name != d.name and d.path != "." and repo.chunks.available(d):
            write_identity(d.root(repo.root), changed, repo.config.id)
        repo.save_devices(devices)
        return DeviceChange(changed, shares_with=sharing_with(ws, changed.name))


@dataclass(frozen=True)
class RemoveResult:
    """A device removed: what a drain moved, or (forgotten) what it left behind."""

    device: Device
    drained_pieces: int
    drained_bytes: int
    changes: Changes
    forgotten: ForgetPlan | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"removed": self.device.name,
                                  "moved_pieces": self.drained_pieces,
                                  "moved_bytes": self.drained_bytes}  # fmt: skip
        if self.forgotten is not None:
            out["forgotten"] = self.forgotten.to_json()
        return out


def preview_forget(ws: Workspace, name: str) -> ForgetPlan:
    """What ``remove_device(force=True)`` would leave under-replicated or lose; refused as the
    removal itself is (the device 'main', doubts about the other devices)."""
    ws.repo.chunks.refresh()
    device = ws.repo.devices.get(name)
    _refuse_main(device)
    refuse_on_doubt(ws, f"remove device {name}", writes=False, skip={name})
    return plan_forget(ws, device)


def _refuse_main(device: Device) -> None:
    if device.name == MAIN:
        raise UserError(
            "'main' is the repository folder itself and cannot be removed; "
            "set it offline, or give other devices more weight"
        )


def remove_device(
    ws: Workspace,
    name: str,
    *,
    drain: bool,
    force: bool,
    allow_loss: bool = False,
    ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> RemoveResult:
    """Take a device out of the repository.

    ``drain`` moves every piece off it first (rebalance with the device excluded), then
    forgets it. ``force`` forgets it at once (a dead disk): its pieces count as missing until
    ``repair`` rebuilds them elsewhere; refused, naming the chunks and models, when chunks
    would be on no other device, unless ``allow_loss`` (the user confirmed it).
    """
    if drain == force:
        raise UserError("say how: --drain (move its data off first) or --force (forget it now)")
    repo = ws.repo
    with repo.writer(lock_timeout, ctx=ctx):
        repo.chunks.refresh()
        device = repo.devices.get(name)
        _refuse_main(device)
        moved = moved_bytes = 0
        forgotten = None
        if drain:
            if not repo.chunks.available(device):
                raise UserError(
                    f"device {name} cannot be read ({device.path}); use --force to forget it "
                    "and 'repair' to rebuild its pieces elsewhere"
                )
            # Every device (this one included) trusted and writable before the first move.
            refuse_on_doubt(ws, f"drain {name}")
        else:  # forgetting this device is the fix for its own doubt, not for another's
            refuse_on_doubt(ws, f"remove device {name}", skip={name})
            forgotten = plan_forget(ws, device)
            if forgotten.lost and not allow_loss:
                raise UserError(
                    f"removing device {name} would lose data: {forgotten.loss_text()}. "
                    "Nothing was changed; bring the device back and drain it, or confirm the "
                    "loss (--allow-loss)"
                )
        if drain:
            # Planned once, before the device is marked draining: a drain that cannot fit is
            # refused with nothing moved, and the same plan is then carried out.
            plan = plan_moves(repo.chunks, frozenset({device.id}))
            _refuse_stuck(plan, repo.chunks, device)
            repo.save_devices(repo.devices.updated(name, state=DRAINING))
            with reporting(f"draining {name}", lambda: "some moves; it stays registered as "
                           "draining: run 'device rm --drain' again"):  # fmt: skip
                result = execute_moves(repo.chunks, plan, ctx or JobContext())
            moved, moved_bytes = result.moved_pieces, result.moved_bytes
            left = sum(1 for _ in repo.chunks.iter_pieces(repo.devices.get(name)))
            if left:
                raise UserError(
                    f"device {name} still holds {left} pieces that could not be moved "
                    "(see 'scrub'); it stays registered as draining"
                )
        repo.save_devices(repo.devices.without(device.id))
        if forgotten is not None:  # its pieces no longer count: sizes are measured again
            ws.catalog.forget_stored()
    models = frozenset(forgotten.models_lost + forgotten.models_under) if forgotten else frozenset()
    return RemoveResult(device, moved, moved_bytes, Changes(models, storage=True), forgotten)


def _refuse_stuck(plan: MovePlan, chunks: PlacedChunkStore, device: Device) -> None:
    """Refuse a drain up front, with the numbers, when the other devices cannot take all
    of ``device``'s pieces (instead of moving some and stopping half way)."""
    if plan.stuck:
        _total, room = chunks.room(excluding=frozenset({device.id}))
        raise UserError(
            f"cannot drain {device.name}: {len(plan.stuck)} of its pieces "
            f"({human_bytes(plan.stuck_bytes)}) fit on no other device after the "
            f"{len(plan.moves)} that do ({human_bytes(plan.bytes)}); room now: {room}. "
            "Nothing was moved; add a device or free space first"
        )
