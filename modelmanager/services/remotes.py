"""Remote repositories, the use cases: add, list, remove, show, push and pull.

A remote holds what a repository's main device holds: ``config.json``, ``models/`` (manifests,
labels) and ``chunks/`` (whole chunk objects). Push and pull move only the chunks the other side
lacks (content addresses make that a set difference), several at a time, then write the
manifest, then the labels of that version: until the manifest is there, readers of the other
side do not see the version. Running the same command again after an interruption resumes,
because chunks already sent are skipped. Every received chunk is checked against its hash
before it is kept.

Remote names and URLs live in ``remotes.json`` in the data folder. Credentials never do: they go
to the OS keyring, or come from the standard AWS environment variables and profiles. The engine
parts (client, credentials, layout, manifest cache, label rules) are in
``modelmanager.core.remote``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from modelmanager import paths
from modelmanager.core.chunks.store import chunk_key, decode_object
from modelmanager.core.jobs import JobContext
from modelmanager.core.remote.cache import ManifestCache
from modelmanager.core.remote.client import open_blob_store
from modelmanager.core.remote.credentials import forget_credentials, store_credentials
from modelmanager.core.remote.labels import LabelConflict, plan_labels
from modelmanager.core.remote.layout import RemoteRepository
from modelmanager.core.remote.spec import DEFAULT_RETRIES, SCHEMES, RemoteSpec
from modelmanager.core.remote.transfer import needed_chunks, transfer
from modelmanager.core.repo.names import check_model_name
from modelmanager.core.repo.repository import (
    DEFAULT_LOCK_TIMEOUT,
    RepoConfig,
    manifest_key,
    utc_now,
)
from modelmanager.core.storage.base import BlobNotFound
from modelmanager.core.storage.remote import RemoteError
from modelmanager.errors import IntegrityError, NotFoundError, UserError
from modelmanager.services import Changes, Workspace, settings

# Names the fronts and tests import from here (their home is core.remote).
__all__ = [
    "LabelConflict",
    "RemoteRepository",
    "RemoteSpec",
    "RemoteVersion",
    "TransferResult",
    "add_remote",
    "get_remote",
    "list_remotes",
    "list_versions",
    "open_remote",
    "pull",
    "push",
    "remove_remote",
]


def list_remotes() -> list[RemoteSpec]:
    """The configured remotes, by name."""
    found = settings.read_list("remotes.json", "remotes")
    try:
        specs = [RemoteSpec(**r) for r in found]
    except (TypeError, UserError):
        path = settings.settings_path("remotes.json")
        raise UserError("this list of remotes is damaged (an entry of unknown shape)",
                        path=path) from None  # fmt: skip
    return sorted(specs, key=lambda r: r.name)


def _entry(spec: RemoteSpec) -> dict[str, Any]:
    doc = asdict(spec)
    if spec.retries == DEFAULT_RETRIES:
        del doc["retries"]  # files stay as they were before retries could be set
    return doc


def _save(remotes: list[RemoteSpec]) -> None:
    settings.write_list("remotes.json", "remotes", [_entry(r) for r in remotes])


def get_remote(name: str) -> RemoteSpec:
    """The remote called ``name``; NotFoundError naming the ones there are."""
    for r in list_remotes():
        if r.name == name:
            return r
    known = ", ".join(r.name for r in list_remotes()) or "none"
    raise NotFoundError(f"no remote named {name!r} (remotes: {known})")


def add_remote(
    name: str, url: str, *, endpoint: str | None = None, profile: str | None = None,
    access_key: str | None = None, secret_key: str | None = None,
    retries: int = DEFAULT_RETRIES,
) -> RemoteSpec:  # fmt: skip
    """Remember a remote; S3 keys, if given, go to the OS keyring (refused without one)."""
    check_model_name(name)  # the same rules: portable, no slashes at the ends
    spec = RemoteSpec(name, url.rstrip("/"), endpoint, profile, retries)
    if spec.scheme not in SCHEMES or "://" not in url:
        raise UserError(f"remote URL must start with s3://, http(s):// or file://, not {url!r}")
    if any(r.name == name for r in list_remotes()):
        raise UserError(f"a remote named {name!r} exists; remove it first")
    if (access_key or secret_key) and spec.scheme != "s3":
        raise UserError("access keys are for s3:// remotes only")
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise UserError("give both the access key id and the secret key")
        store_credentials(name, access_key, secret_key)
    _save([*list_remotes(), spec])
    return spec


def remove_remote(name: str) -> RemoteSpec:
    """Forget a remote and its stored credentials (nothing on the remote is touched)."""
    spec = get_remote(name)
    _save([r for r in list_remotes() if r.name != name])
    forget_credentials(name)
    return spec


def open_remote(spec: RemoteSpec | str) -> RemoteRepository:
    """Connect to a remote (by name or spec); nothing is downloaded yet."""
    spec = get_remote(spec) if isinstance(spec, str) else spec
    cache = ManifestCache(paths.cache_dir() / "remotes", spec.url)
    return RemoteRepository(spec, open_blob_store(spec), cache)


@dataclass(frozen=True)
class RemoteVersion:
    """One version as a remote lists it (from its manifest and labels; no chunk is read)."""

    model: str
    seq: int
    created: str
    message: str
    labels: tuple[str, ...]
    logical_bytes: int


def list_versions(remote: RemoteRepository) -> list[RemoteVersion]:
    """Every version on a remote, by model then number (manifests come from the cache once read)."""
    out = []
    for model in remote.model_names():
        labels = remote.read_labels(model)
        for seq in remote.version_numbers(model):
            m = remote.read_manifest(model, seq)
            own = tuple(sorted(k for k, n in labels.items() if n == seq))
            out.append(RemoteVersion(model, seq, m.created, m.message, own, m.logical_bytes))
    return out


# -- moving versions ---------------------------------------------------------------------


@dataclass(frozen=True)
class TransferResult:
    """What a push or pull moved: chunks, the manifest, and the labels of the version."""

    ref: str
    chunks_sent: int
    bytes_sent: int
    chunks_skipped: int
    manifest_written: bool
    labels: tuple[str, ...] = ()  # set on the receiving side (new there, or moved when asked)
    label_conflicts: tuple[LabelConflict, ...] = ()  # left as the receiving side had them
    changes: Changes = field(default_factory=Changes)  # in this repository (pull only)

    def to_json(self) -> dict[str, Any]:
        """Push and pull alike: chunks and bytes moved (sent or received), labels set."""
        return {"ref": self.ref, "chunks_moved": self.chunks_sent, "bytes_moved": self.bytes_sent,
                "chunks_skipped": self.chunks_skipped, "manifest_written": self.manifest_written,
                "labels": list(self.labels),
                "label_conflicts": [c.to_json() for c in self.label_conflicts]}  # fmt: skip


def push(ws: Workspace, ref: str, remote: RemoteRepository, *, ctx: JobContext | None = None,
         move_labels: bool = False) -> TransferResult:  # fmt: skip
    """Send a version, the chunks the remote lacks, the manifest, then the version's labels.

    A label the remote has on another version is kept there and reported, unless
    ``move_labels``.
    """
    ctx = ctx or JobContext()
    if remote.spec.read_only:
        raise RemoteError("cannot push to an HTTP remote: it is read-only", path=remote.spec.url)
    manifest = ws.repo.resolve(ref)
    key = manifest_key(manifest.model, manifest.seq)
    body = manifest.to_bytes()
    existing = remote.blobs.size(key)
    if existing is not None and remote.blobs.get(key) != body:
        raise UserError(f"the remote has a different {manifest.ref}: the two repositories "
                        "have diverged; push under another model name")  # fmt: skip
    if not remote.is_repository():
        c = ws.repo.config
        remote.create(RepoConfig(uuid.uuid4().hex, utc_now(), c.chunk_size, c.group_size, c.codec))
    needed = needed_chunks(manifest)
    have = remote.chunk_ids()
    missing = [(c, n) for c, n in needed.items() if c not in have]
    chunks = ws.repo.chunks

    def send(cid: str, length: int) -> int:
        obj, _data, _degraded = chunks.read_object(cid, length)  # verified before it leaves
        return remote.blobs.put(chunk_key(cid), obj)

    total = sum(n for _c, n in missing)
    sent = transfer(missing, send, ctx, total, f"push {manifest.ref}")
    written = existing is None
    if written:
        remote.blobs.put(key, body)  # the version appears only when all its chunks are there
    ctx.check()
    plan = plan_labels(manifest.model, manifest.seq, ws.repo.read_labels(manifest.model),
                       remote.read_labels(manifest.model), move=move_labels)  # fmt: skip
    for label in plan.labels:  # after the manifest: a label never names a missing version
        remote.write_label(manifest.model, label, manifest.seq, plan.previous[label])
    return TransferResult(manifest.ref, len(missing), sent, len(needed) - len(missing), written,
                          plan.labels, plan.conflicts)  # fmt: skip


def pull(
    ws: Workspace,
    remote: RemoteRepository,
    ref: str,
    *,
    ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    move_labels: bool = False,
) -> TransferResult:
    """Fetch a version and the chunks this repository lacks, verified, then commit it with the
    remote's labels on it. A label this repository has on another version is kept and
    reported, unless ``move_labels``."""
    ctx = ctx or JobContext()
    manifest = remote.resolve(ref)  # validated: names, paths, sizes, chunk ids
    model, seq = manifest.model, manifest.seq
    body = manifest.to_bytes()
    repo = ws.repo
    local_key = manifest_key(model, seq)
    needed = needed_chunks(manifest)
    there = remote.read_labels(model)
    changed = Changes(frozenset({model}), (manifest.ref,))
    if repo.blobs.size(local_key) is not None:
        if repo.blobs.get(local_key) != body:
            raise UserError(f"this repository has a different {manifest.ref}: the two have "
                            "diverged")  # fmt: skip
        plan = plan_labels(model, seq, there, repo.read_labels(model), move=move_labels)
        if plan.labels:  # only labels to bring: no chunk moves
            with repo.writer(lock_timeout):
                plan = plan_labels(model, seq, there, repo.read_labels(model), move=move_labels)
                for label in plan.labels:
                    repo.set_label(model, label, seq)
                ws.catalog.refresh_labels(model)
        return TransferResult(manifest.ref, 0, 0, len(needed), False, plan.labels,
                              plan.conflicts, changed if plan.labels else Changes())  # fmt: skip
    with repo.writer(lock_timeout):
        repo.check_not_removed(manifest)  # before any chunk moves
        repo.chunks.refresh()
        policy = repo.policy_for(model)
        missing = [(c, n) for c, n in needed.items() if not repo.chunks.has(c, policy)]
        if missing:  # stored sizes from one listing; a chunk not listed counts at its plain size
            sizes = remote.chunk_sizes()
            need = sum(sizes.get(c, n) for c, n in missing) * policy.overhead
            repo.chunks.require_room(int(need), f"pulling {manifest.ref}")

        def fetch(cid: str, length: int) -> int:
            where = f"{remote.spec.url}/{chunk_key(cid)}"
            try:
                blob = remote.blobs.get(chunk_key(cid))
            except BlobNotFound:
                raise IntegrityError("the remote lacks a chunk its manifest needs",
                                     path=where) from None  # fmt: skip
            decode_object(blob, cid, length, where)  # refuses bytes that do not match the id
            repo.chunks.write_pieces(cid, blob, policy)
            return len(blob)

        total = sum(n for _c, n in missing)
        received = transfer(missing, fetch, ctx, total, f"pull {manifest.ref}")
        ctx.check()
        repo.chunks.flush()
        plan = plan_labels(model, seq, there, repo.read_labels(model), move=move_labels)
        size = repo.commit_version(manifest, plan.labels)  # manifest, then labels
        ws.catalog.add_version(local_key, manifest, size)
    return TransferResult(manifest.ref, len(missing), received, len(needed) - len(missing), True,
                          plan.labels, plan.conflicts, changed)  # fmt: skip
