"""Rebuild a repository's main folder from the metadata replicas on its surviving devices.

Every device holds a copy of every metadata record under ``meta/`` (core/repo/replicas.py).
When main is lost, ``recover DEST --from DEVICE...`` reads those copies (the latest intact one
of each record, as a read does), writes them into DEST as the new main, points the device list
at the folders given (a disk may be mounted elsewhere now) and sets the devices that were not
given offline, so that ``repair`` rebuilds their pieces from what survives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from modelmanager.core.placement import DEVICES_FILE, MAIN, OFFLINE, DeviceSet, read_identity
from modelmanager.core.repo.journal import REPOSITORY_JOURNAL
from modelmanager.core.repo.replicas import BOOTSTRAP_KEYS, META, Copy, ReplicatedRecords
from modelmanager.core.repo.repository import Repository
from modelmanager.core.repo.versions import CONFIG_KEY, RepoConfig, utc_now
from modelmanager.core.storage import LocalBlobStore, StoreFactory
from modelmanager.errors import IntegrityError, RepositoryError, UserError, fault_words


@dataclass(frozen=True)
class Recovered:
    """What a recovery brought back and what it could not find."""

    root: Path
    records: int  # metadata records written into the new main
    found: tuple[str, ...]  # devices read
    offline: tuple[str, ...]  # registered devices not given (set offline)
    damaged: tuple[str, ...]  # records with no intact copy on any device given


def recover(
    dest: Path, sources: Sequence[Path], blob_stores: StoreFactory = LocalBlobStore
) -> Recovered:
    """Write a new main folder at ``dest`` from the replicas on the device folders ``sources``."""
    dest = Path(dest).absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"recover writes a new main folder and {dest} is not empty; name an "
                        "empty or new folder")  # fmt: skip
    if not sources:
        raise UserError("name the surviving device folders with --from")
    copies, found = _device_copies(sources, blob_stores)
    records = ReplicatedRecords(copies)
    try:
        config = RepoConfig.from_doc(records.read(CONFIG_KEY), CONFIG_KEY)[0]
        devices = DeviceSet.from_doc(records.read(DEVICES_FILE), DEVICES_FILE)
    except IntegrityError as e:
        raise RepositoryError(f"no intact copy of a needed record ({e})") from None
    ids = {identity["repository_id"] for _root, identity in found}
    if ids != {config.id}:
        raise UserError("the folders given belong to different repositories; give the devices "
                        "of one repository")  # fmt: skip
    # The device list, pointing at where the devices are now; those not given are set offline.
    where = {identity["device_id"]: root for root, identity in found}
    moved = []
    for d in devices.devices:
        if d.name == MAIN:
            moved.append(replace(d, path="."))
        elif d.id in where:
            moved.append(replace(d, path=str(where[d.id])))
        else:
            moved.append(replace(d, state=OFFLINE))
    new_devices = DeviceSet(tuple(moved))
    try:
        written, damaged = _write_main(dest, records, config, new_devices, blob_stores)
    except OSError as e:
        # DEST is no repository until its config.json (written last) exists: run it again.
        raise RepositoryError(
            f"cannot write the new repository folder: {fault_words(e)}; choose a folder on a "
            "writable disk with room and run recover again (no piece on the devices was touched)",
            path=dest,
        ) from None  # fmt: skip
    names = {d.id: d.name for d in devices.devices}
    return Recovered(
        dest,
        written + len(BOOTSTRAP_KEYS),
        tuple(names.get(identity["device_id"], "?") for _r, identity in found),
        tuple(d.name for d in new_devices.devices if d.state == OFFLINE and d.id not in where
              and d.name != MAIN),
        tuple(damaged),
    )  # fmt: skip


def _device_copies(
    sources: Sequence[Path], blob_stores: StoreFactory
) -> tuple[list[Copy], list[tuple[Path, dict[str, str]]]]:
    """The metadata replica of every folder given, with the identity that says whose it is."""
    copies, found = [], []
    for source in sources:
        root = Path(source).absolute()
        identity = read_identity(root)
        if identity is None or not (root / META / CONFIG_KEY).is_file():
            raise UserError(f"{root} is not a device folder with a metadata copy (it needs "
                            ".modelmanager-device.json and meta/config.json)")  # fmt: skip
        copies.append(Copy(str(identity.get("name", root)), str(root / META),
                           blob_stores(root / META)))  # fmt: skip
        found.append((root, {k: str(v) for k, v in identity.items()}))
    return copies, found


def _write_main(
    dest: Path, records: ReplicatedRecords, config: RepoConfig, new_devices: DeviceSet,
    blob_stores: StoreFactory,
) -> tuple[int, list[str]]:  # fmt: skip
    """Write every record into the new main folder, then its device list and config (last);
    returns the records written and the keys with no intact copy."""
    dest.mkdir(parents=True, exist_ok=True)
    main = blob_stores(dest)
    written, damaged = 0, []
    keys = [k for prefix in ("models", REPOSITORY_JOURNAL) for k, _s in records.keys(prefix)]
    for key in keys:
        chosen = records.best(key)
        if chosen is None:
            damaged.append(key)
            continue
        main.put(key, chosen[0], sync=False)
        written += 1
    main.flush()
    repo = Repository(dest, config, blob_stores)
    with repo.writer():
        best_policy = records.best("policy.json")
        if best_policy is not None:
            repo.records.write("policy.json", best_policy[1])
        repo.records.write(DEVICES_FILE, new_devices.to_doc() | {"written": utc_now()})
        repo.reload_layout()
        repo.sync_replicas()
        # Last: with config.json, DEST is a repository.
        repo.records.write(CONFIG_KEY, config.to_doc())
    return written, damaged
