"""Remote repositories: the same format on S3-compatible storage, HTTP(S) or a shared folder.

A remote holds what a repository's main device holds: ``config.json``, ``models/`` (manifests,
labels) and ``chunks/`` (whole chunk objects). Push and pull move only the chunks the other side
lacks (content addresses make that a set difference), several at a time, then write the
manifest last: until then, readers of the other side do not see the version. Running the same
command again after an interruption resumes, because chunks already sent are skipped. Every
received chunk is checked against its hash before it is kept.

Remote names and URLs live in ``remotes.json`` in the data folder. Credentials never do: they go
to the OS keyring, or come from the standard AWS environment variables and profiles.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelmanager import paths
from modelmanager.core.chunks.store import chunk_key, decode_object
from modelmanager.core.ids import content_id, is_content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import check_model_name
from modelmanager.core.repo.repository import (
    CONFIG_KEY,
    DEFAULT_LOCK_TIMEOUT,
    RepoConfig,
    VersionStore,
    manifest_key,
    utc_now,
)
from modelmanager.core.storage.atomic import atomic_write
from modelmanager.core.storage.base import BlobNotFound, BlobStore
from modelmanager.core.storage.local import LocalBlobStore
from modelmanager.core.storage.remote import FsspecBlobStore, RemoteError
from modelmanager.errors import IntegrityError, NotFoundError, UserError
from modelmanager.services import Workspace, settings

#: Transfers in flight at once (objects are up to one chunk, 4 MiB by default).
TRANSFERS = 8
KEYRING_SERVICE = "modelmanager"
SCHEMES = ("s3", "http", "https", "file")


@dataclass(frozen=True)
class RemoteSpec:
    """A named remote: its URL and, for S3, an endpoint (MinIO, Ceph) and an AWS profile."""

    name: str
    url: str
    endpoint: str | None = None
    profile: str | None = None

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def read_only(self) -> bool:
        return self.scheme in ("http", "https")


def list_remotes() -> list[RemoteSpec]:
    """The configured remotes, by name."""
    found = settings.read_list("remotes.json", "remotes")
    try:
        specs = [RemoteSpec(**r) for r in found]
    except TypeError:
        path = settings.settings_path("remotes.json")
        raise UserError("this list of remotes is damaged (an entry of unknown shape)",
                        path=path) from None  # fmt: skip
    return sorted(specs, key=lambda r: r.name)


def _save(remotes: list[RemoteSpec]) -> None:
    settings.write_list("remotes.json", "remotes", [asdict(r) for r in remotes])


def get_remote(name: str) -> RemoteSpec:
    for r in list_remotes():
        if r.name == name:
            return r
    known = ", ".join(r.name for r in list_remotes()) or "none"
    raise NotFoundError(f"no remote named {name!r} (remotes: {known})")


def add_remote(
    name: str, url: str, *, endpoint: str | None = None, profile: str | None = None,
    access_key: str | None = None, secret_key: str | None = None,
) -> RemoteSpec:  # fmt: skip
    """Remember a remote; S3 keys, if given, go to the OS keyring (refused without one)."""
    check_model_name(name)  # the same rules: portable, no slashes at the ends
    spec = RemoteSpec(name, url.rstrip("/"), endpoint, profile)
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
    try:
        import keyring

        keyring.delete_password(KEYRING_SERVICE, f"remote:{name}")
    except Exception:
        pass
    return spec


def store_credentials(name: str, access_key: str, secret_key: str) -> None:
    """Keep S3 keys in the OS keyring; a clear error where no keyring backend exists."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, f"remote:{name}",
                             json.dumps({"key": access_key, "secret": secret_key}))  # fmt: skip
    except KeyringError as e:
        raise UserError(
            f"no OS keyring to keep the keys of remote {name!r} in ({type(e).__name__}); "
            "use an AWS profile (--profile) or the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            "environment variables instead"
        ) from None


def _credentials(name: str) -> dict[str, str] | None:
    try:
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, f"remote:{name}")
    except Exception:
        return None
    if not stored:
        return None
    doc = json.loads(stored)
    return {"key": doc["key"], "secret": doc["secret"]}


class RemoteRepository(VersionStore):
    """An open remote: its versions (read like a local repository's) and its chunks."""

    def __init__(self, spec: RemoteSpec, blobs: BlobStore) -> None:
        self.spec = spec
        self.blobs = blobs
        # Manifests never change once written, so what was read once is kept (the cache
        # folder, per remote URL) and browsing again costs no download.
        self.cache = paths.cache_dir() / "remotes" / content_id(spec.url.encode())[:16]

    def read_manifest_key(self, key: str) -> Manifest:
        cached = self.cache / key
        try:
            manifest = Manifest.from_bytes(cached.read_bytes(), str(cached))
        except (OSError, IntegrityError):
            manifest = super().read_manifest_key(key)  # validated, key checked
            with contextlib.suppress(OSError):
                cached.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(cached, manifest.to_bytes())
            return manifest
        if manifest_key(manifest.model, manifest.seq) != key:
            return super().read_manifest_key(key)
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


def open_remote(spec: RemoteSpec | str) -> RemoteRepository:
    """Connect to a remote (by name or spec); nothing is downloaded yet."""
    spec = get_remote(spec) if isinstance(spec, str) else spec
    scheme, _, rest = spec.url.partition("://")
    scheme = scheme.lower()
    if scheme == "s3":
        import s3fs  # type: ignore[import-untyped]

        options: dict[str, Any] = {}
        creds = _credentials(spec.name)
        if creds:
            options.update(key=creds["key"], secret=creds["secret"])
        if spec.profile:
            options["profile"] = spec.profile
        if spec.endpoint:
            options["client_kwargs"] = {"endpoint_url": spec.endpoint}
        options["config_kwargs"] = {"retries": {"max_attempts": 5, "mode": "standard"}}
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        root = rest
    elif scheme in ("http", "https"):
        import fsspec  # type: ignore[import-untyped]

        fs = fsspec.filesystem("http", skip_instance_cache=True)
        root = spec.url
    elif scheme == "file":
        # A shared folder: the local store's atomic, synced writes, not fsspec's in-place ones.
        return RemoteRepository(spec, LocalBlobStore(Path(rest)))
    else:
        raise UserError(f"unsupported remote URL {spec.url!r}")
    return RemoteRepository(spec, FsspecBlobStore(fs, root, spec.url, read_only=spec.read_only))


# -- moving versions ---------------------------------------------------------------------


@dataclass(frozen=True)
class TransferResult:
    """What a push or pull moved."""

    ref: str
    chunks_sent: int
    bytes_sent: int
    chunks_skipped: int
    manifest_written: bool


def _transfer(ids: list[tuple[str, int]], move: Callable[[str, int], int], ctx: JobContext,
              total: int, text: str) -> int:  # fmt: skip
    """Run ``move(chunk_id, length)`` for each chunk, TRANSFERS at a time; bytes moved."""
    done = [0, 0]  # plain bytes done (progress), bytes moved (only this thread adds)
    queue = list(ids)
    with ThreadPoolExecutor(TRANSFERS, "mm-transfer") as pool:
        inflight: dict[Future[int], int] = {}
        try:
            while queue or inflight:
                ctx.check()
                while queue and len(inflight) < 2 * TRANSFERS:
                    cid, length = queue.pop()
                    inflight[pool.submit(move, cid, length)] = length
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    length = inflight.pop(fut)
                    done[0] += length
                    done[1] += fut.result()
                    ctx.report(done[0], total, text)
        finally:
            for fut in inflight:
                fut.cancel()
    return done[1]


def _needed(manifest: Manifest) -> dict[str, int]:
    return {c.id: c.length for f in manifest.files for c in f.chunks}


def push(ws: Workspace, ref: str, remote: RemoteRepository, *,
         ctx: JobContext | None = None) -> TransferResult:  # fmt: skip
    """Send a version and the chunks the remote lacks; the manifest goes last."""
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
        config = RepoConfig(uuid.uuid4().hex, utc_now(), ws.repo.config.chunk_size,
                            ws.repo.config.group_size, ws.repo.config.codec)  # fmt: skip
        remote.blobs.put(CONFIG_KEY, config.to_bytes())
    needed = _needed(manifest)
    have = remote.chunk_ids()
    missing = [(c, n) for c, n in needed.items() if c not in have]
    chunks = ws.repo.chunks

    def send(cid: str, length: int) -> int:
        obj, _data, _degraded = chunks.read_object(cid, length)  # verified before it leaves
        return remote.blobs.put(chunk_key(cid), obj)

    total = sum(n for _c, n in missing)
    sent = _transfer(missing, send, ctx, total, f"push {manifest.ref}")
    written = existing is None
    if written:
        remote.blobs.put(key, body)  # last: the version appears only when all its chunks are there
    return TransferResult(manifest.ref, len(missing), sent, len(needed) - len(missing), written)


def pull(ws: Workspace, remote: RemoteRepository, ref: str, *, ctx: JobContext | None = None,
         lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> TransferResult:  # fmt: skip
    """Fetch a version and the chunks this repository lacks, verified, then commit it."""
    ctx = ctx or JobContext()
    manifest = remote.resolve(ref)  # validated: names, paths, sizes, chunk ids
    body = manifest.to_bytes()
    repo = ws.repo
    local_key = manifest_key(manifest.model, manifest.seq)
    if repo.blobs.size(local_key) is not None:
        if repo.blobs.get(local_key) != body:
            raise UserError(f"this repository has a different {manifest.ref}: the two have "
                            "diverged")  # fmt: skip
        return TransferResult(manifest.ref, 0, 0, len(_needed(manifest)), False)
    needed = _needed(manifest)
    with repo.writer(lock_timeout):
        repo.check_not_removed(manifest)  # before any chunk moves
        repo.chunks.refresh()
        policy = repo.policy_for(manifest.model)
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
        received = _transfer(missing, fetch, ctx, total, f"pull {manifest.ref}")
        ctx.check()
        repo.chunks.flush()
        size = repo.commit_version(manifest)
        ws.catalog.add_version(local_key, manifest, size)
    return TransferResult(manifest.ref, len(missing), received, len(needed) - len(missing), True)
