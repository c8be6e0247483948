"""Nothing destructive on doubt: the one gate every deleting or moving operation passes.

``gc``, ``rm``, ``repair``, ``rebalance``, ``device rm`` (drain or forget) and ``stores adopt
--remove-original`` call :func:`refuse_on_doubt` before their first change. It refuses (nothing
changed, one line naming what is wrong and how to fix it) when

- a metadata record fails its check (``Repository.metadata_problems``): a record that cannot be
  trusted could make good data look unused;
- a device that is not set offline is not mounted, has no readable identity file, or its
  identity names another device or another repository (a swapped disk, or a damaged
  ``config.json``): its pieces would look missing, or a foreign folder would be written;
- a device the operation writes cannot be written (read-only, failing, not permitted): a probe
  creates, syncs and removes a ``.tmp-`` file on each, so a read-only disk stops the operation
  before the first change instead of half way.

:func:`refuse_missing` is garbage collection's own rule: when more than a small share of the
chunks the versions need is missing on every device, a device or the configuration is wrong,
and what looks unused is not garbage. :func:`reporting` turns a device fault that strikes
half way into one line saying what had been done.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from modelmanager.core.placement import IDENTITY_FILE, MAIN, OFFLINE, Device, read_identity
from modelmanager.core.storage import BlobStore
from modelmanager.core.storage.atomic import TEMP_PREFIX, fsync_dir, write_parts
from modelmanager.errors import DeviceError, DoubtError, fault_words
from modelmanager.services import Workspace

#: How many problems a refusal names before "and N more".
SHOWN = 3
#: Share of needed chunks that may be missing everywhere before gc refuses (integer division:
#: under 100 needed chunks, a single missing one refuses).
MISSING_SHARE = 100


@dataclass(frozen=True)
class DeviceDoubt:
    """A device whose pieces cannot be trusted to be seen now: why, and how to fix it."""

    device: Device
    root: Path
    why: str
    fix: str

    def __str__(self) -> str:
        return f"device {self.device.name} ({self.root}) {self.why}"


def _fix_unmounted(name: str) -> str:
    return (f"mount it, or say it is gone: 'modelmanager device offline {name}' (for now) or "
            f"'modelmanager device rm {name} --force' (for good)")  # fmt: skip


def device_doubts(
    ws: Workspace, skip: Collection[str] = (), *, unmounted: bool = True
) -> list[DeviceDoubt]:
    """Every device (not offline, not named in ``skip``) that is not what the repository says
    it is, and (with ``unmounted``) every one whose folder is missing."""
    repo = ws.repo
    config_doubt = _config_doubt(ws)
    if config_doubt is not None:
        return [config_doubt]
    doubts: list[DeviceDoubt] = []
    for d in repo.devices.devices:
        if d.state == OFFLINE or d.name in skip or d.path == ".":
            continue
        root = d.root(repo.root)
        if not root.is_dir():
            if unmounted:
                doubts.append(DeviceDoubt(d, root, "is not mounted (the folder is missing)",
                                          _fix_unmounted(d.name)))  # fmt: skip
            continue
        identity = read_identity(root)
        if identity is None:
            exists = (root / IDENTITY_FILE).exists()
            why = ("has an identity file that cannot be read (damaged or a failing disk)"
                   if exists else "has no identity file: another disk, or an empty mount "
                   "point, is there")  # fmt: skip
            doubts.append(DeviceDoubt(d, root, why, _fix_unmounted(d.name)))
            continue
        repo_id, device_id = identity.get("repository_id"), identity.get("device_id")
        if repo_id != repo.config.id:
            doubts.append(DeviceDoubt(
                d, root, f"belongs to another repository ({repo_id}; this one is "
                f"{repo.config.id})", "mount this repository's disk there, or "
                + _fix_unmounted(d.name).split(", or ", 1)[1]))  # fmt: skip
        elif device_id != d.id:
            known = repo.devices.by_id(str(device_id))
            which = f"device {known.name}" if known else "a device removed from it"
            doubts.append(DeviceDoubt(
                d, root, f"holds {which} of this repository, not {d.name}",
                f"mount {d.name}'s disk at {root}, or re-register a moved disk with "
                "'modelmanager device add PATH'"))  # fmt: skip
    return doubts


def _config_doubt(ws: Workspace) -> DeviceDoubt | None:
    """When two or more devices (every one mounted, not offline) agree on one repository id
    that is not config.json's, config.json is the odd one out: named as main's doubt."""
    repo = ws.repo
    ids: set[object] = set()
    count = 0
    for d in repo.devices.devices:
        if d.state == OFFLINE or d.path == "." or not d.root(repo.root).is_dir():
            continue
        identity = read_identity(d.root(repo.root))
        ids.add(identity.get("repository_id") if identity else None)
        count += 1
    if count < 2 or len(ids) != 1:
        return None
    (foreign,) = ids
    if foreign is None or foreign == repo.config.id:
        return None
    main = next((d for d in repo.devices.devices if d.path == "."), repo.devices.devices[0])
    return DeviceDoubt(
        main, repo.root, f"has config.json saying repository {repo.config.id}, but every "
        f"device says {foreign}: config.json is damaged or from another repository",
        "run 'modelmanager verify', and restore config.json from a device's copy "
        "('modelmanager repair')")  # fmt: skip


def refuse_metadata_doubts(ws: Workspace, action: str) -> None:
    """DoubtError naming the first few metadata records that fail their check, if any."""
    problems = ws.repo.metadata_problems()
    if problems:
        named = "; ".join(str(p) for p in problems[:SHOWN])
        more = f" and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise DoubtError(
            f"cannot {action}: {len(problems)} metadata record(s) fail their check ({named}"
            f"{more}); nothing was changed. Run 'modelmanager verify' to see them and "
            "'modelmanager repair' to restore them from the copies on the devices"
        )


def refuse_device_doubts(
    ws: Workspace, action: str, skip: Collection[str] = (), *, unmounted: bool = True
) -> None:
    """DoubtError naming the devices that are not what they claim (and with ``unmounted``,
    those not mounted), if any."""
    doubts = device_doubts(ws, skip, unmounted=unmounted)
    if doubts:
        first = doubts[0]
        more = (" (also " + "; ".join(str(d) for d in doubts[1:SHOWN])
                + (f" and {len(doubts) - SHOWN} more" if len(doubts) > SHOWN else "")
                + ")") if len(doubts) > 1 else ""  # fmt: skip
        raise DoubtError(f"cannot {action}: {first}{more}; nothing was changed. To fix: "
                         f"{first.fix}")  # fmt: skip


def writable_targets(ws: Workspace, skip: Collection[str] = ()) -> list[tuple[str, BlobStore]]:
    """(name for messages, store) of the folders an operation may write: the repository's
    own (metadata, even when main takes no pieces) and every device mounted and not offline
    (a missing folder is never probed: that would create it on the disk below the mount)."""
    repo = ws.repo
    chunks = repo.chunks
    main = next((d for d in repo.devices.devices if d.path == "."), None)
    name = f"device {main.name if main else MAIN} ({repo.root})"
    targets: list[tuple[str, BlobStore]] = [(name, repo.blobs)]
    for d in repo.devices.devices:
        if d.state != OFFLINE and d.name not in skip and d.path != "." and chunks.available(d):
            targets.append((chunks.describe(d), chunks.stores[d.id]))
    return targets


def probe_store(name: str, store: BlobStore, action: str) -> None:
    """Create, sync and remove a ``.tmp-`` blob; DeviceError ("nothing was changed") when
    the store refuses. An empty blob: a full disk still passes (deleting frees space)."""
    key = f"{TEMP_PREFIX}probe-{secrets.token_hex(4)}"
    try:
        store.put(key, b"", sync=True)
        store.delete(key)
        store.flush()
    except OSError as e:
        raise DeviceError(
            f"{name}: {fault_words(e)} while checking it can be written; cannot {action}: "
            "nothing was changed. Make it writable (remount it read-write), or set it offline "
            "first", err=e.errno, device=name,
        ) from None  # fmt: skip


def probe_folder(folder: Path, action: str) -> None:
    """The same probe on a plain folder (a model store whose files are to be removed)."""
    probe = folder / f"{TEMP_PREFIX}probe-{secrets.token_hex(4)}"
    try:
        write_parts(probe, [b""])
        probe.unlink()
        fsync_dir(folder)
    except OSError as e:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
        raise DeviceError.of(e, f"folder {folder}", "checking it can be written").then(
            f"cannot {action}: nothing was changed"
        ) from None


def refuse_on_doubt(
    ws: Workspace, action: str, *, writes: bool = True, skip: Collection[str] = (),
    metadata: bool = True, unmounted: bool = True,
) -> None:  # fmt: skip
    """Refuse ``action`` (a phrase: "collect garbage") before its first change when anything
    it relies on is in doubt: metadata records (unless ``metadata`` is False), devices (bar
    those named in ``skip``; unmounted ones unless ``unmounted`` is False), and with
    ``writes`` every folder it may write (probed)."""
    if metadata:
        refuse_metadata_doubts(ws, action)
    refuse_device_doubts(ws, action, skip, unmounted=unmounted)
    if writes:
        for name, store in writable_targets(ws, skip):
            probe_store(name, store, action)


def refuse_missing(
    ws: Workspace, action: str, needed: Iterable[str], present: Collection[str]
) -> None:
    """Refuse ``action`` when more than 1 % of the ``needed`` chunks (any, under 100) are in
    none of ``present``: that is a device or configuration gone wrong, not garbage."""
    wanted = set(needed)
    missing = [c for c in wanted if c not in present]
    if len(missing) <= len(wanted) // MISSING_SHARE:
        return
    offline = [d.name for d in ws.repo.devices.devices if d.state == OFFLINE and d.path != "."]
    hidden = f" (offline devices are not looked at: {', '.join(offline)})" if offline else ""
    raise DoubtError(
        f"cannot {action}: {len(missing)} of the {len(wanted)} chunks the versions need are "
        f"missing on every device{hidden}. That means a device is not mounted or the "
        "repository's configuration is wrong, not that data is unused; nothing was deleted. "
        "Run 'modelmanager verify' to see which versions are affected; bring the devices "
        "back, or remove those versions if their data is truly lost"
    )


@contextlib.contextmanager
def reporting(action: str, done: Callable[[], str]) -> Iterator[None]:
    """A device fault inside the block leaves as one line: the device, the cause, and what
    ``action`` had done by then (``done()``)."""
    try:
        yield
    except DeviceError as e:
        raise e.then(f"{action} stopped after {done()}") from e
    except OSError as e:
        where = f"the file {e.filename}" if e.filename else "a device"
        raise DeviceError.of(e, where, action).then(f"stopped after {done()}") from e
