"""Manifests read from a remote, kept on local disk: they never change once written, so
browsing a remote again downloads nothing. Labels move, so they are never cached.

The cache is kept per remote repository, not per URL: its folder is named after the URL and
the repository id in the remote's ``config.json``. A remote deleted and made again at the same
URL has another id, so manifests cached from the old one are never shown for the new one.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from modelmanager.core.ids import content_id
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.versions import manifest_key
from modelmanager.core.storage.atomic import atomic_write
from modelmanager.core.storage.base import check_key
from modelmanager.errors import IntegrityError


class ManifestCache:
    """One remote's manifests under ``root``, in a folder named after the remote's URL; one
    subfolder per repository id that URL has had (:meth:`of_repository`)."""

    def __init__(self, root: Path, url: str, repository_id: str | None = None) -> None:
        self.root = Path(root)
        self.url = url
        self.repository_id = repository_id
        self.folder = self.root / content_id(url.encode())[:16]
        if repository_id is not None:
            self.folder /= content_id(repository_id.encode())[:16]

    def of_repository(self, repository_id: str) -> ManifestCache:
        """The cache of the repository with ``repository_id`` at this URL."""
        return ManifestCache(self.root, self.url, repository_id)

    def _path(self, key: str) -> Path:
        return self.folder.joinpath(*check_key(key).split("/"))

    def get(self, key: str) -> Manifest | None:
        """The cached manifest for ``key``, or None (absent, unreadable or not that version)."""
        path = self._path(key)
        try:
            manifest = Manifest.from_bytes(path.read_bytes(), str(path))
        except (OSError, IntegrityError):
            return None
        if manifest_key(manifest.model, manifest.seq) != key:
            return None
        return manifest

    def put(self, key: str, manifest: Manifest) -> None:
        """Keep a validated manifest; a cache that cannot be written is no error."""
        path = self._path(key)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, manifest.to_bytes())
