"""Use cases shared by the command line and the GUI; each returns a result and its Changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelmanager import paths
from modelmanager.core.catalog import Catalog
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.ids import content_id
from modelmanager.core.repo.lock import WriterLock
from modelmanager.core.repo.repository import Repository
from modelmanager.core.repo.versions import DEFAULT_CHUNK_SIZE, DEFAULT_GROUP_SIZE
from modelmanager.core.storage import LocalBlobStore, StoreFactory
from modelmanager.errors import ModelManagerError


@dataclass(frozen=True)
class Changes:
    """What an operation changed, so a front refreshes only that."""

    models: frozenset[str] = frozenset()
    versions: tuple[str, ...] = ()
    storage: bool = False


@dataclass
class Workspace:
    """An open repository with its catalog: what every service works on."""

    repo: Repository
    catalog: Catalog = field(repr=False)

    def close(self) -> None:
        self.catalog.close()


def open_workspace(
    path: Path | None = None, *, create: bool = False, blob_stores: StoreFactory = LocalBlobStore
) -> Workspace:
    """Open the repository at ``path`` (default: the user's default one, created on first use).

    ``blob_stores`` builds the store of each folder (the tests wrap them to inject faults).
    """
    if path is None:
        repo = _default_repository(paths.default_repo_path(), blob_stores)
    else:
        repo = Repository.open(path, create=create, blob_stores=blob_stores)
    return Workspace(repo, Catalog.open(paths.cache_dir(), repo))


#: How long a process waits for another one making the default repository (a second or so).
FIRST_USE_WAIT = 120.0


def _default_repository(path: Path, blob_stores: StoreFactory) -> Repository:
    """The per-user repository, made on first use; processes started at once make it once.

    Without the lock, a process that finds the folder half made by another (two commands
    started together on a new machine) would say "no repository here". The lock lives in
    the cache folder, not beside the repository, so nothing is left in the user's folders.
    """
    try:
        return Repository.open(path, blob_stores=blob_stores)  # the usual case: it exists
    except ModelManagerError:
        pass  # absent, or being made right now: ask again under the lock
    where = content_id(str(path.absolute()).encode())[:12]
    lock = WriterLock(paths.cache_dir() / "locks" / f"create-{where}")
    lock.acquire(FIRST_USE_WAIT)
    try:
        return Repository.open(path, create=True, blob_stores=blob_stores)
    finally:
        lock.release()


def init_repository(
    path: Path | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    group_size: int = DEFAULT_GROUP_SIZE,
    codec: CodecSettings | None = None,
    blob_stores: StoreFactory = LocalBlobStore,
) -> Workspace:
    """Create a new, empty repository (default location when ``path`` is None)."""
    repo = Repository.create(
        path or paths.default_repo_path(),
        chunk_size=chunk_size,
        group_size=group_size,
        codec=codec,
        blob_stores=blob_stores,
    )
    return Workspace(repo, Catalog.open(paths.cache_dir(), repo))
