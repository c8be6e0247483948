"""Use cases shared by the command line and the GUI; each returns a result and its Changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelmanager import paths
from modelmanager.core.catalog import Catalog
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.repo.repository import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_GROUP_SIZE,
    Repository,
)
from modelmanager.core.storage import LocalBlobStore, StoreFactory


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
        path, create = paths.default_repo_path(), True
    repo = Repository.open(path, create=create, blob_stores=blob_stores)
    return Workspace(repo, Catalog.open(paths.cache_dir(), repo))


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
