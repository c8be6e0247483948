"""Remote repositories, the use cases: add, list, remove, show, push and pull.

A remote holds what a repository's main device holds: ``config.json``, ``models/`` (manifests,
labels) and ``chunks/`` (whole chunk objects). Push and pull move only the chunks the other side
lacks (content addresses make that a set difference), several at a time, then write the
manifest, then the model's label journals are reconciled both ways (``remote_labels``):
until the manifest is there, readers of the other side do not see the version. A version is
known on either side by its content, not its number (``core.remote.versions``): when another
repository pushed its own ``NAME@1`` first, ours is claimed as the next free number and the
result says so; a remote's numbers are claimed
atomically, so no push ever overwrites another. Running the same command again after an
interruption resumes, because chunks already sent are skipped. Every received chunk is checked
against its hash before it is kept.

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
from modelmanager.core.remote.journals import JournalConflict, Prefer
from modelmanager.core.remote.labels import LabelConflict
from modelmanager.core.remote.layout import RemoteRepository
from modelmanager.core.remote.spec import DEFAULT_RETRIES, SCHEMES, RemoteSpec
from modelmanager.core.remote.transfer import needed_chunks, transfer
from modelmanager.core.remote.versions import (
    find_version,
    numbered,
    read_version,
    translate_parent,
    version_identity,
)
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import check_model_name
from modelmanager.core.repo.records import seal
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.core.repo.versions import RepoConfig, manifest_key, utc_now
from modelmanager.core.storage.base import BlobNotFound
from modelmanager.core.storage.remote import RemoteError
from modelmanager.errors import IntegrityError, NotFoundError, UserError
from modelmanager.services import Changes, Workspace, settings
from modelmanager.services.remote_labels import Conflict, LabelSync, sync_labels

# Names the fronts and tests import from here (their home is core.remote).
__all__ = [
    "JournalConflict",
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
    if spec.conditional_writes:
        del doc["conditional_writes"]  # likewise: only the setting that differs is written
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
    retries: int = DEFAULT_RETRIES, conditional_writes: bool = True,
) -> RemoteSpec:  # fmt: skip
    """Remember a remote; S3 keys, if given, go to the OS keyring (refused without one).
    ``conditional_writes=False`` claims version numbers under a lease lock instead (a server
    whose conditional writes cannot be trusted)."""
    check_model_name(name)  # the same rules: portable, no slashes at the ends
    spec = RemoteSpec(name, url.rstrip("/"), endpoint, profile, retries, conditional_writes)
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

    ref: str  # the version as the sending side numbers it
    chunks_sent: int
    bytes_sent: int
    chunks_skipped: int
    manifest_written: bool
    labels: tuple[str, ...] = ()  # label records set on the receiving side
    label_conflicts: tuple[Conflict, ...] = ()  # moved on both sides; or kept (no journal)
    changes: Changes = field(default_factory=Changes)  # in this repository (pull only)
    stored_ref: str = ""  # the version as the receiving side numbers it ("": as ``ref``)
    notice: str = ""  # why the two differ, for the user (its number was taken by another version)
    labels_back: tuple[str, ...] = ()  # label records set on the sending side (its journal
    # lacked the other side's newer moves)

    def to_json(self) -> dict[str, Any]:
        """Push and pull alike: chunks and bytes moved (sent or received), labels set."""
        return {"ref": self.ref, "stored_ref": self.stored_ref or self.ref,
                "chunks_moved": self.chunks_sent, "bytes_moved": self.bytes_sent,
                "chunks_skipped": self.chunks_skipped, "manifest_written": self.manifest_written,
                "labels": list(self.labels),
                "label_conflicts": [c.to_json() for c in self.label_conflicts],
                "labels_back": list(self.labels_back), "notice": self.notice}  # fmt: skip


#: Numbers a push tries to claim before it gives up (each loss means another push just won).
MAX_CLAIMS = 50


def _taken_on_remote(ref: str, exact: bool) -> str:
    text = f"the remote already has {ref} from another repository"
    return f"{text}; without --exact it is pushed under the next free number" if exact else text


def _claim(ws: Workspace, remote: RemoteRepository, manifest: Manifest, exact: bool,
           ctx: JobContext) -> tuple[int, bool, int | None]:  # fmt: skip
    """Claim a number for ``manifest`` on the remote and write it there, atomically.

    Its own number when free, else the next free one (``exact``: refuse instead). Returns the
    number, whether this push wrote it (False: the same version was pushed meanwhile by
    another process) and the number another repository had taken first (or None).
    """
    model, seq = manifest.model, manifest.seq
    numbers = remote.version_numbers(model)
    taken = seq if seq in numbers else None
    target = max(numbers) + 1 if taken else seq
    for _attempt in range(MAX_CLAIMS):
        ctx.check()
        parent = translate_parent(ws.repo, remote, manifest, target)
        body = seal(numbered(manifest, target, parent).to_json())  # a sealed record
        try:
            remote.claim(manifest_key(model, target), body)
        except FileExistsError:
            pass  # another push claimed it between our listing and our write
        else:
            return target, True, taken
        other = read_version(remote, model, target)
        if other is not None and version_identity(other) == version_identity(manifest):
            return target, False, taken  # the same version, pushed at the same time
        if exact:
            raise UserError(_taken_on_remote(f"{model}@{target}", exact=True))
        taken = target if taken is None else taken
        target = max([target, *remote.version_numbers(model)]) + 1
    raise RemoteError(f"could not claim a number for {manifest.ref} in {MAX_CLAIMS} tries: "
                      "other pushes kept winning; try again", path=remote.spec.url)  # fmt: skip


def _prefer(keep_local: bool, move_labels: bool, pushing: bool) -> Prefer:
    """Who wins a conflicting label move: ``--keep-local`` this repository; ``--move-labels``
    the sending side (kept as its old meaning); by default the newer move."""
    if keep_local and move_labels and not pushing:
        raise UserError("--keep-local and --move-labels ask for opposite sides on a pull")
    if keep_local or (move_labels and pushing):
        return "local"
    return "remote" if move_labels else "newest"


def push(ws: Workspace, ref: str, remote: RemoteRepository, *, ctx: JobContext | None = None,
         move_labels: bool = False, exact: bool = False, keep_local: bool = False,
         lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> TransferResult:  # fmt: skip
    """Send a version, the chunks the remote lacks, the manifest, then the version's labels.

    The version is found on the remote by its content, whatever its number there. A new one
    takes its own number when free; when another repository has that number, the next free
    one (said in ``notice``), or with ``exact`` the push refuses. Numbers are claimed
    atomically (:meth:`RemoteRepository.claim`): two pushes never both get one. Then the
    model's label journals are reconciled both ways (``services.remote_labels``): a label both
    sides moved differently is reported and the newer move wins on both, unless
    ``keep_local`` (or ``move_labels``, its old name on a push).
    """
    given, ctx = ctx, ctx or JobContext()  # the lock watches the given one (None: the lane's)
    prefer = _prefer(keep_local, move_labels, pushing=True)
    if remote.spec.read_only:
        raise RemoteError("cannot push to an HTTP remote: it is read-only", path=remote.spec.url)
    manifest = ws.repo.resolve(ref)
    model, seq = manifest.model, manifest.seq
    there = find_version(remote, manifest, seq)
    if there is None and exact and seq in remote.version_numbers(model):
        raise UserError(_taken_on_remote(manifest.ref, exact=True))  # before any chunk moves
    if there is None and not remote.is_repository():
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
    written, taken = False, None
    if there is None:  # the version appears only when all its chunks are there
        there, written, taken = _claim(ws, remote, manifest, exact, ctx)
    ctx.check()
    stored = f"{model}@{there}"
    notice = ""
    if taken is not None:
        notice = f"{_taken_on_remote(f'{model}@{taken}', exact=False)}; pushed yours as {stored}"
    elif there != seq:
        notice = f"the remote has {manifest.ref} already, as {stored}"
    # After the manifest: a label never names a missing one.
    with ws.repo.writer(lock_timeout, ctx=given):
        synced = sync_labels(ws.repo, remote, model, local_seq=seq, remote_seq=there, push=True,
                             prefer=prefer, move=move_labels)  # fmt: skip
        if synced.here:
            ws.catalog.refresh_labels(model)
    changed = Changes(frozenset({model})) if synced.here else Changes()
    return TransferResult(manifest.ref, len(missing), sent, len(needed) - len(missing), written,
                          synced.remote, synced.conflicts, changed, stored, notice,
                          synced.here)  # fmt: skip


def _local_number(ws: Workspace, manifest: Manifest, exact: bool) -> tuple[int, str]:
    """The number a pulled version gets here (under the writer lock) and the notice for it:
    its own when free, else the next free one (``exact``: refuse)."""
    model, seq = manifest.model, manifest.seq
    if seq not in ws.repo.version_numbers(model):
        return seq, ""  # a removed number with other content is refused on commit, as ever
    if exact:
        raise UserError(f"this repository has a different {manifest.ref}; without --exact it is "
                        "pulled under the next free number")  # fmt: skip
    target = ws.repo.next_seq(model)
    return target, (f"this repository already has {manifest.ref} with other content; pulled "
                    f"it as {model}@{target}")  # fmt: skip


def pull_all(
    ws: Workspace,
    remote: RemoteRepository,
    *,
    ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    move_labels: bool = False,
    exact: bool = False,
    keep_local: bool = False,
) -> list[TransferResult]:
    """Pull every version of every model the remote holds, oldest first, with their labels:
    a repository restored from a remote (``pull --all``). A version already here moves no
    chunk, so it can run again after an interruption."""
    ctx = ctx or JobContext()
    return [
        pull(ws, remote, f"{model}@{seq}", ctx=ctx, lock_timeout=lock_timeout,
             move_labels=move_labels, exact=exact, keep_local=keep_local)
        for model in remote.model_names() for seq in remote.version_numbers(model)
    ]  # fmt: skip


def pull(
    ws: Workspace,
    remote: RemoteRepository,
    ref: str,
    *,
    ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    move_labels: bool = False,
    exact: bool = False,
    keep_local: bool = False,
) -> TransferResult:
    """Fetch a version and the chunks this repository lacks, verified, then commit it with the
    remote's labels on it. The version is found here by its content, whatever its number; a
    new one whose number this repository has for other content gets the next free number
    (said in ``notice``), or with ``exact`` the pull refuses. Then the model's label journals
    are reconciled both ways, as on a push: a label both sides moved differently is reported
    and the newer move wins, unless ``keep_local`` (this repository's) or ``move_labels``
    (the remote's)."""
    given, ctx = ctx, ctx or JobContext()  # the lock watches the given one (None: the lane's)
    prefer = _prefer(keep_local, move_labels, pushing=False)
    manifest = remote.resolve(ref)  # validated: names, paths, sizes, chunk ids
    model, seq = manifest.model, manifest.seq
    repo = ws.repo
    needed = needed_chunks(manifest)
    here = find_version(repo, manifest, seq)
    if here is not None:  # only labels to bring: no chunk moves
        stored = f"{model}@{here}"
        notice = "" if here == seq else f"this repository has {manifest.ref} already, as {stored}"
        with repo.writer(lock_timeout, ctx=given):
            synced = _sync_pulled(ws, remote, model, here, seq, prefer, move_labels)
        changed = Changes(frozenset({model}), (stored,)) if synced.here else Changes()
        return TransferResult(manifest.ref, 0, 0, len(needed), False, synced.here,
                              synced.conflicts, changed, stored, notice,
                              synced.remote)  # fmt: skip
    with repo.writer(lock_timeout, ctx=given):
        target, notice = _local_number(ws, manifest, exact)
        copy = numbered(manifest, target, translate_parent(remote, repo, manifest, target))
        repo.check_not_removed(copy)  # before any chunk moves
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
        size = repo.commit_version(copy)  # the manifest, then (below) the labels
        ws.catalog.add_version(manifest_key(model, target), copy, size)
        synced = _sync_pulled(ws, remote, model, target, seq, prefer, move_labels)
    changed = Changes(frozenset({model}), (copy.ref,))
    return TransferResult(manifest.ref, len(missing), received, len(needed) - len(missing), True,
                          synced.here, synced.conflicts, changed, copy.ref, notice,
                          synced.remote)  # fmt: skip


def _sync_pulled(ws: Workspace, remote: RemoteRepository, model: str, here: int, there: int,
                 prefer: Prefer, move: bool) -> LabelSync:  # fmt: skip
    """The labels of ``model`` after a pull (under the writer lock), the catalog following."""
    synced = sync_labels(ws.repo, remote, model, local_seq=here, remote_seq=there, push=False,
                         prefer=prefer, move=move)  # fmt: skip
    if synced.here:
        ws.catalog.refresh_labels(model)
    return synced
