"""A remote repository: the same layout as a repository's main device, read through any
blob store. ``config.json``, ``models/`` (manifests, labels) and ``chunks/`` (whole chunk
objects, compressed as stored locally)."""

from __future__ import annotations

import json
from typing import Any

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.ids import is_content_id
from modelmanager.core.remote.cache import ManifestCache
from modelmanager.core.remote.spec import RemoteSpec
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.repository import (
    CONFIG_KEY,
    RepoConfig,
    VersionStore,
    label_key,
    utc_now,
)
from modelmanager.core.storage.base import BlobStore


class RemoteRepository(VersionStore):
    """An open remote: its versions (read like a local repository's), labels and chunks."""

    def __init__(self, spec: RemoteSpec, blobs: BlobStore, cache: ManifestCache | None = None):
        self.spec = spec
        self.blobs = blobs
        self.cache = cache

    def read_manifest_key(self, key: str) -> Manifest:
        """A validated manifest, from the local cache when it was read once before."""
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return cached
        manifest = super().read_manifest_key(key)  # validated, key checked
        if self.cache is not None:
            self.cache.put(key, manifest)
        return manifest

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
        """Make an empty place a repository: its ``config.json`` first, as a local one."""
        self.blobs.put(CONFIG_KEY, config.to_bytes())

    def write_label(self, model: str, label: str, seq: int, previous: int | None) -> None:
        """Point ``label`` at version ``seq``, in the local label format (Repository.set_label)
        so a remote stays a repository; write it only after the version's manifest."""
        doc: dict[str, Any] = {"version": seq, "set": utc_now(), "previous": previous}
        self.blobs.put(label_key(model, label), json.dumps(doc).encode())
