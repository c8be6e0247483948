"""A remote repository: the same layout as a repository's main device, read through any
blob store. ``config.json``, ``models/`` (manifests, labels) and ``chunks/`` (whole chunk
objects, compressed as stored locally).

A new version's manifest is claimed, never just written (:meth:`RemoteRepository.claim`): an
exclusive create on a shared folder, a conditional write (``If-None-Match: *``) on an S3 server
that honours them, else a check-then-write under the remote's lease lock. Whoever claims a
number second is told so, never overwrites.
"""

from __future__ import annotations

import contextlib
from typing import Any

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.ids import is_content_id
from modelmanager.core.remote.cache import ManifestCache
from modelmanager.core.remote.lease import LeaseLock
from modelmanager.core.remote.spec import RemoteSpec
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.versions import CONFIG_KEY, RepoConfig, VersionStore, label_key, utc_now
from modelmanager.core.storage.base import BlobNotFound, BlobStore
from modelmanager.core.storage.remote import FsspecBlobStore
from modelmanager.errors import IntegrityError, RepositoryError


class RemoteRepository(VersionStore):
    """An open remote: its versions (read like a local repository's), labels and chunks."""

    def __init__(self, spec: RemoteSpec, blobs: BlobStore, cache: ManifestCache | None = None):
        self.spec = spec
        self.blobs = blobs
        self._cache = cache  # of the URL; bound to the remote's repository id on first use
        self._bound = False

    @property
    def cache(self) -> ManifestCache | None:
        """The manifest cache of the repository there now (None: not a repository yet)."""
        if not self._bound and self._cache is not None:
            try:
                config = RepoConfig.from_bytes(self.blobs.get(CONFIG_KEY), self.spec.url)
            except BlobNotFound:
                return None  # nothing to cache yet; asked again once there is
            except (IntegrityError, RepositoryError):
                self._cache = None  # a config we cannot read: read every manifest afresh
            else:
                self._cache = self._cache.of_repository(config.id)
            self._bound = True
        return self._cache if self._bound else None

    def read_manifest_key(self, key: str) -> Manifest:
        """A validated manifest, from the local cache when it was read once before."""
        cache = self.cache
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            return cached
        manifest = super().read_manifest_key(key)  # validated, key checked
        if cache is not None:
            cache.put(key, manifest)
        return manifest

    def claim(self, key: str, body: bytes) -> None:
        """Create ``key`` unless something has that name (FileExistsError): atomic against
        every other writer of this remote, whatever the server."""
        blobs = self.blobs
        if isinstance(blobs, FsspecBlobStore) and not blobs.conditional_writes():
            with LeaseLock(blobs, "claim", where=self.spec.url) as lock:
                if blobs.size(key) is not None:
                    raise FileExistsError(key)
                lock.check(blobs.deadline(len(body)))
                blobs.put(key, body)
            return
        blobs.put(key, body, exclusive=True)  # a shared folder's link, or If-None-Match

    def chunk_sizes(self) -> dict[str, int]:
        """Every chunk the remote holds and its stored size (one listing, not a request per
        chunk)."""
        out = {}
        for key, size in self.blobs.list("chunks"):
            name = key.rsplit("/", 1)[-1]
            if is_content_id(name) and key == chunk_key(name):
                out[name] = size
        return out

    def chunk_ids(self) -> set[str]:
        """Every chunk the remote holds."""
        return set(self.chunk_sizes())

    def is_repository(self) -> bool:
        return self.blobs.size(CONFIG_KEY) is not None

    def create(self, config: RepoConfig) -> None:
        """Make an empty place a repository: its ``config.json`` first, as a local one. Claimed
        like a manifest: when two first pushes race, the first config stays (and no error)."""
        with contextlib.suppress(FileExistsError):
            self.claim(CONFIG_KEY, config.to_bytes())
        self._bound = False  # the cache follows the id that won

    def write_label(self, model: str, label: str, seq: int | None, previous: int | None) -> None:
        """Point ``label`` at version ``seq`` (None: removed), as a sealed record in the local
        label shape (Repository.set_label) so a remote stays a repository; only after the
        manifest, and after the journal entry that says so."""
        now = utc_now()
        doc: dict[str, Any] = {"version": seq, "set": now, "previous": previous, "written": now}
        self.records.write(label_key(model, label), doc)
