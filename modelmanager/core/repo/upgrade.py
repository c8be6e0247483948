"""Upgrade a format-1 repository to format 2 in place: seal every record, replicate it.

Format 1 kept metadata once, on main, without checksums. The upgrade runs under the writer
lock when a format-1 repository is opened: every record on main is re-written sealed (after
it is validated), the device list and policy are written even where they were absent, device
identities are sealed, every record is copied to every device, and ``config.json`` goes to
version 2 last. It can stop at any point and run again: a half-upgraded repository reads as
format 1 (sealed records are checked, unsealed ones accepted) until the config says 2.
"""

from __future__ import annotations

import logging

from modelmanager.core.placement import DEVICES_FILE, MAIN, read_identity, write_identity
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.records import seal, unseal
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT, Repository, read_config
from modelmanager.core.repo.versions import CONFIG_KEY, POLICY_KEY, REPO_VERSION, utc_now
from modelmanager.errors import IntegrityError, ModelManagerError

log = logging.getLogger(__name__)


def upgrade_in_place(repo: Repository) -> bool:
    """Upgrade ``repo`` (format 1) to the current format; False when it cannot be written now
    (read-only, or locked by another writer): it is then opened for reading only."""
    try:
        repo.lock.acquire(DEFAULT_LOCK_TIMEOUT)
    except (OSError, ModelManagerError) as e:
        log.warning("repository %s not upgraded (%s); opened read-only", repo.root, e)
        return False
    try:
        found = read_config(repo.root, repo.blob_stores)
        if found is not None and found[1] == REPO_VERSION:  # another process did it meanwhile
            repo.format_version = REPO_VERSION
            repo.reload_layout()
            return True
        try:
            _upgrade(repo)
        except OSError as e:
            log.warning("repository %s not upgraded (%s); opened read-only", repo.root, e)
            repo.format_version = 1
            repo.reload_layout()
            return False
        return True
    finally:
        repo.lock.release()


def _upgrade(repo: Repository) -> None:
    """The steps, in an order that can stop anywhere (the lock is held)."""
    # 1. Every record on main, sealed where it stands (a damaged one is left for verify).
    keys = [k for k, _s in repo.blobs.list("models")]
    keys += [k for k in (DEVICES_FILE, POLICY_KEY) if repo.blobs.size(k) is not None]
    for key in keys:
        data = repo.blobs.get(key)
        try:
            doc = unseal(data, key, legacy=True)
            if "/versions/" in key:
                Manifest.from_doc(doc, key)
        except IntegrityError as e:
            log.warning("not upgraded, damaged: %s", e)
            continue
        sealed = seal(doc)
        if sealed != data:
            repo.blobs.put(key, sealed)
    # 2. Device identities, so the devices count as mounted under the sealed rules.
    for device in repo.devices.devices:
        root = device.root(repo.root)
        identity = (
            read_identity(root, legacy=True) if device.name != MAIN and root.is_dir() else None
        )
        if identity and identity.get("device_id") == device.id:
            write_identity(root, device, repo.config.id)
    # 3. From here records are written through the replicated store, everywhere.
    repo.format_version = REPO_VERSION
    repo.reload_layout()
    now = utc_now()
    repo.records.write(DEVICES_FILE, repo.devices.to_doc() | {"written": now})
    repo.records.write(POLICY_KEY, repo.policies.to_doc())
    # config.json is left out: it is still unsealed here, and step 4 writes every copy of it.
    left = repo.replicated.heal([p for p in repo.survey() if p.key != CONFIG_KEY])
    for problem in left:
        log.warning("metadata copy %s not written during upgrade (%s); 'modelmanager "
                    "repair' writes it", problem.where, problem.what)  # fmt: skip
    # 4. Last, the config says format 2: until then a reader treats the repository as format 1.
    repo.records.write(CONFIG_KEY, repo.config.to_doc())
    log.info("repository %s upgraded to format %d", repo.root, REPO_VERSION)
