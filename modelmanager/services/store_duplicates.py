"""Files kept twice: identical content across the model stores and repositories (issue 10).

Sizes first; only files whose size another file shares are hashed. A store file is compared
with a repository file by the repository's chunk ids, so nothing is read back from the
repository. Split from services/stores.py (listing and adopting the stores' models).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmanager.core.ids import content_id, new_hasher
from modelmanager.core.jobs import JobContext
from modelmanager.core.stores import Store, StoreFile
from modelmanager.services import Workspace

READ_SIZE = 1 << 20


@dataclass
class DuplicateGroup:
    """Identical content kept in several places: where, and what keeping one copy frees."""

    size: int
    digest: str
    copies: list[str] = field(default_factory=list)  # "STORE: MODEL / FILE" or "repo: REF / FILE"
    physical: int = 0  # distinct copies on disk (links to one blob are one)

    @property
    def freeable(self) -> int:
        return (self.physical - 1) * self.size

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "blake3": self.digest, "copies": self.copies,
                "physical": self.physical, "freeable": self.freeable}  # fmt: skip


def _file_digest(path: Path, ctx: JobContext, done: list[int], total: int) -> str:
    hasher = new_hasher()
    with open(path, "rb") as f:
        while block := f.read(READ_SIZE):
            ctx.check()
            hasher.update(block)
            done[0] += len(block)
            ctx.report(done[0], total, f"hashing {path.name}")
    return str(hasher.hexdigest())


def _matches_chunks(path: Path, chunk_ids: tuple[tuple[str, int], ...], ctx: JobContext) -> bool:
    """Whether the file holds exactly these chunks in order (ids are BLAKE3 of the bytes)."""
    with open(path, "rb") as f:
        for cid, length in chunk_ids:
            ctx.check()
            if content_id(f.read(length)) != cid:
                return False
        return f.read(1) == b""


def find_duplicates(
    stores: list[Store], workspaces: list[Workspace], ctx: JobContext | None = None
) -> list[DuplicateGroup]:
    """Files with identical content across stores and repositories, biggest saving first.

    Sizes first; only files whose size another file shares are hashed (with progress). A
    store file is compared with a repository file by the repository's chunk ids, so nothing
    is read back from the repository.
    """
    ctx = ctx or JobContext()
    by_identity: dict[tuple[int, int], tuple[StoreFile, list[str]]] = {}
    for store in stores:
        for model in store.models():
            for f in model.files:
                entry = by_identity.setdefault(f.identity, (f, []))
                entry[1].append(f"{store.title}: {model.ref} / {f.name}")
    stored: dict[tuple[tuple[str, int], ...], tuple[int, list[str]]] = {}
    for ws in workspaces:
        for manifest in ws.repo.iter_manifests():
            for rec in manifest.files:
                key = tuple((c.id, c.length) for c in rec.chunks)
                stored.setdefault(key, (rec.size, []))[1].append(
                    f"repo {ws.repo.root.name}: {manifest.ref} / {rec.path}"
                )
    sizes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for identity, (f, _labels) in by_identity.items():
        if f.size > 0:
            sizes[f.size].append(identity)
    repo_sizes: dict[int, list[tuple[tuple[str, int], ...]]] = defaultdict(list)
    for key, (size, _labels) in stored.items():
        repo_sizes[size].append(key)
    todo = [i for size, ids in sizes.items() if len(ids) > 1 or size in repo_sizes for i in ids]
    total = sum(by_identity[i][0].size for i in todo)
    done = [0]
    groups: dict[str, DuplicateGroup] = {}
    compared: set[tuple[str, tuple[tuple[str, int], ...]]] = set()  # (content, repo file)
    for identity in todo:
        f, labels = by_identity[identity]
        try:
            digest = _file_digest(f.path, ctx, done, total)
        except OSError:
            continue  # gone or unreadable since it was listed: not a duplicate we can vouch for
        group = groups.setdefault(digest, DuplicateGroup(f.size, digest))
        group.copies += labels
        group.physical += 1
        for key in repo_sizes.get(f.size, []):
            if (digest, key) in compared:
                continue  # same content as a file already compared: the answer is the same
            compared.add((digest, key))
            repo_labels = stored[key][1]
            try:
                same = _matches_chunks(f.path, key, ctx)
            except OSError:
                same = False
            if same:
                group.copies += repo_labels
                group.physical += 1  # a repository keeps one copy of it, whatever it names
    found = [g for g in groups.values() if g.physical > 1]
    return sorted(found, key=lambda g: (-g.freeable, g.copies))
