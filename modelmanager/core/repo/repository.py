"""A repository on a local folder: the single owner of its config, manifests and labels.

Write order (an invariant, see docs/repository-format.md): chunk objects (synced) -> manifest
(exclusive create, synced) -> labels -> catalog row. A crash at any point leaves a valid
repository: at worst unreferenced chunks, which ``gc`` removes. "latest" is not stored: it is
always the highest version number, so it can never lag behind a committed version.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.faults import crash_point
from modelmanager.core.formats.jsonstrict import loads_strict
from modelmanager.core.ids import content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.lanes import current_job
from modelmanager.core.placement import DEVICES_FILE, DeviceSet
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.hints import did_you_mean, number_ranges
from modelmanager.core.repo.lock import WriterLock
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import Ref, check_label, model_key, parse_ref
from modelmanager.core.storage import (
    BlobNotFound,
    BlobStore,
    FolderStore,
    LocalBlobStore,
    StoreFactory,
)
from modelmanager.errors import IntegrityError, NotFoundError, RepositoryError, UserError

REPO_FORMAT = "modelmanager-repository"
REPO_VERSION = 1
CONFIG_KEY = "config.json"
POLICY_KEY = "policy.json"
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
DEFAULT_GROUP_SIZE = 64 * 1024
#: Seconds a writer waits for another writer before giving up with a clear message.
DEFAULT_LOCK_TIMEOUT = 10.0


@dataclass(frozen=True)
class RepoConfig:
    """What ``config.json`` holds: identity, format version, chunking and codec defaults."""

    id: str
    created: str
    chunk_size: int = DEFAULT_CHUNK_SIZE
    group_size: int = DEFAULT_GROUP_SIZE
    codec: CodecSettings = field(default_factory=CodecSettings)

    def to_bytes(self) -> bytes:
        doc = {
            "format": REPO_FORMAT,
            "version": REPO_VERSION,
            "id": self.id,
            "created": self.created,
            "chunking": {"chunk_size": self.chunk_size, "group_size": self.group_size},
            "codec": asdict(self.codec),
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, source: Path) -> RepoConfig:
        try:
            doc = loads_strict(data)
            if doc.get("format") != REPO_FORMAT:
                raise RepositoryError("not a ModelManager repository config", path=source)
            if doc.get("version") != REPO_VERSION:
                raise RepositoryError(
                    f"repository format {doc.get('version')!r} is not one this ModelManager "
                    f"reads ({REPO_VERSION}); upgrade ModelManager",
                    path=source,
                )
            chunking = doc["chunking"]
            config = cls(
                id=str(doc["id"]),
                created=str(doc["created"]),
                chunk_size=int(chunking["chunk_size"]),
                group_size=int(chunking["group_size"]),
                codec=CodecSettings(**doc["codec"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RepositoryError(f"damaged repository config ({e})", path=source) from None
        if not 0 < config.group_size <= config.chunk_size <= 256 * 1024 * 1024:
            raise RepositoryError("repository config has impossible chunk sizes", path=source)
        return config


@dataclass(frozen=True)
class Policies:
    """Redundancy policies: the repository default and per-model overrides (``policy.json``)."""

    default: Policy = field(default_factory=Policy)
    models: dict[str, Policy] = field(default_factory=dict)
    #: Codec overrides: "*" for the repository (else config.json's), or a model name.
    codecs: dict[str, CodecSettings] = field(default_factory=dict)

    def for_model(self, model: str) -> Policy:
        return self.models.get(model, self.default)

    def to_bytes(self) -> bytes:
        doc = {
            "format": 1,
            "default": str(self.default),
            "models": {k: str(v) for k, v in sorted(self.models.items())},
            "codecs": {k: asdict(v) for k, v in sorted(self.codecs.items())},
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, source: Path) -> Policies:
        try:
            doc = loads_strict(data)
            return cls(
                Policy.parse(doc["default"]),
                {str(k): Policy.parse(v) for k, v in doc["models"].items()},
                {str(k): CodecSettings(**v) for k, v in doc.get("codecs", {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError, UserError) as e:
            raise RepositoryError(f"damaged policy file ({e})", path=source) from None


@dataclass(frozen=True)
class RecordProblem:
    """One metadata record that failed its check: where it is and what is wrong with it."""

    path: str  # the file (on main or a device replica)
    what: str  # e.g. "fails its checksum", "missing on device nvme1"

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def utc_now() -> str:
    """Current time as an ISO-8601 UTC string with microseconds (sorts as text)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def manifest_key(model: str, seq: int) -> str:
    return f"{model_key(model)}/versions/{seq:08d}.json"


def label_key(model: str, label: str) -> str:
    return f"{model_key(model)}/labels/{label}.json"


def removed_key(model: str, seq: int) -> str:
    """Where the record of a removed version is kept (its number is never given out again)."""
    return f"{model_key(model)}/removed/{seq:08d}.json"


class VersionStore:
    """Models, versions and labels as stored under ``models/`` of any BlobStore.

    The read side of a repository: a local one (Repository) and a remote one (on S3, HTTP or a
    shared folder) read their versions the same way, and validate them the same way.
    """

    blobs: BlobStore

    def model_names(self) -> list[str]:
        """Every model with at least one version, read from the folders (the truth)."""
        names = set()
        for key, _size in self.blobs.list("models"):
            parts = key.split("/")
            if len(parts) == 4 and parts[2] == "versions":
                names.add(parts[1].replace("~", "/"))
        return sorted(names)

    def manifest_keys(self) -> Iterator[tuple[str, int]]:
        """Every manifest in the repository as (key, size)."""
        for key, size in self.blobs.list("models"):
            parts = key.split("/")
            if len(parts) == 4 and parts[2] == "versions" and parts[3].endswith(".json"):
                yield key, size

    def _numbers(self, model: str, folder: str) -> list[int]:
        seqs = []
        for key, _size in self.blobs.list(f"{model_key(model)}/{folder}"):
            stem = key.rsplit("/", 1)[-1].removesuffix(".json")
            if stem.isdigit():
                seqs.append(int(stem))
        return sorted(seqs)

    def version_numbers(self, model: str) -> list[int]:
        """The versions of ``model``, ascending (empty when the model does not exist)."""
        return self._numbers(model, "versions")

    def removed_numbers(self, model: str) -> list[int]:
        """Versions of ``model`` that were removed, ascending."""
        return self._numbers(model, "removed")

    def read_manifest_key(self, key: str) -> Manifest:
        """Load and validate the manifest stored under ``key``."""
        try:
            data = self.blobs.get(key)
        except BlobNotFound:
            raise NotFoundError("no such version", path=key) from None
        manifest = Manifest.from_bytes(data, key)
        if manifest_key(manifest.model, manifest.seq) != key:
            raise IntegrityError(
                f"manifest says it is {manifest.ref}, but is stored as {key}", path=key
            )
        return manifest

    def read_manifest(self, model: str, seq: int) -> Manifest:
        """Version ``seq`` of ``model``; NotFoundError when absent."""
        if self.blobs.size(manifest_key(model, seq)) is None:
            raise NotFoundError(f"model {model!r} has no version {seq}")
        return self.read_manifest_key(manifest_key(model, seq))

    def read_labels(self, model: str) -> dict[str, int]:
        """The labels of ``model`` and the versions they point at."""
        labels = {}
        for key, _size in self.blobs.list(f"{model_key(model)}/labels"):
            name = key.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                doc = loads_strict(self.blobs.get(key))
                labels[name] = int(doc["version"])
            except (ValueError, KeyError, TypeError, BlobNotFound):
                continue  # a damaged label is reported by verify, not fatal to reading
        return labels

    def resolve(self, ref: str | Ref) -> Manifest:
        """The manifest a reference names; NotFoundError with what exists otherwise."""
        r = parse_ref(ref) if isinstance(ref, str) else ref
        seqs = self.version_numbers(r.model)
        if not seqs:
            hint = did_you_mean(r.model, self.model_names())
            raise NotFoundError(f"no model named {r.model!r}{hint}")
        if r.seq is not None:
            if r.seq not in seqs:
                has = f"version {seqs[0]}" if len(seqs) == 1 else f"versions {number_ranges(seqs)}"
                raise NotFoundError(f"model {r.model!r} has no version {r.seq} (it has {has})")
            return self.read_manifest(r.model, r.seq)
        if r.label is not None:
            labels = self.read_labels(r.model)
            if r.label not in labels:
                known = ", ".join(sorted(labels)) or "none"
                raise NotFoundError(f"model {r.model!r} has no label {r.label!r} (labels: {known})")
            return self.read_manifest(r.model, labels[r.label])
        return self.read_manifest(r.model, seqs[-1])

    def iter_manifests(self) -> Iterator[Manifest]:
        """Every manifest in the repository, validated."""
        for key, _size in self.manifest_keys():
            yield self.read_manifest_key(key)


class Repository(VersionStore):
    """An open repository. Reads need nothing; writes happen inside :meth:`writer`.

    Every folder's BlobStore (the repository's own, each device's) comes from ``blob_stores``.
    """

    blobs: FolderStore

    def __init__(
        self, root: Path, config: RepoConfig, blob_stores: StoreFactory = LocalBlobStore
    ) -> None:
        self.root = root
        self.config = config
        self.blob_stores = blob_stores
        self.blobs = blob_stores(root)
        self.lock = WriterLock(root / "locks")
        self.reload_layout()

    def _layout_stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        """What the device list and policy files are now (time, size, inode), to notice
        another process's change cheaply."""
        stamp: list[tuple[int, int, int] | None] = []
        for name in (DEVICES_FILE, POLICY_KEY):
            try:
                st = (self.root / name).stat()
            except FileNotFoundError:
                stamp.append(None)
            else:
                stamp.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamp)

    def reload_layout(self) -> None:
        """(Re)read devices and policies, e.g. after another command changed them."""
        self._layout_seen = self._layout_stamp()
        self.devices = DeviceSet.load(self.root, self.config.id)
        try:
            self.policies = Policies.from_bytes(self.blobs.get(POLICY_KEY), self.root / POLICY_KEY)
        except BlobNotFound:
            self.policies = Policies()
        self.chunks = PlacedChunkStore(
            self.root, self.config.id, self.devices, self.config.codec,
            lambda: self.policies.default, self.blob_stores,
        )  # fmt: skip

    def save_devices(self, devices: DeviceSet) -> None:
        """Replace the device list (under the writer lock) and reopen the chunk store."""
        self._require_writer()
        devices.save(self.root)
        self.reload_layout()

    def save_policies(self, policies: Policies) -> None:
        """Replace the redundancy policies (under the writer lock)."""
        self._require_writer()
        self.blobs.put(POLICY_KEY, policies.to_bytes())
        self.reload_layout()

    def policy_for(self, model: str) -> Policy:
        """The redundancy policy new chunks of ``model`` are stored with."""
        return self.policies.for_model(model)

    def codec_for(self, model: str) -> CodecSettings:
        """The codec new chunks of ``model`` are encoded with (model, repository, config)."""
        codecs = self.policies.codecs
        return codecs.get(model) or codecs.get("*") or self.config.codec

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        group_size: int = DEFAULT_GROUP_SIZE,
        codec: CodecSettings | None = None,
        blob_stores: StoreFactory = LocalBlobStore,
    ) -> Repository:
        """Make a new repository in ``root`` (absent or empty); RepositoryError otherwise."""
        root = Path(root).absolute()
        if (root / CONFIG_KEY).exists():
            raise RepositoryError("a repository already exists here", path=root)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise RepositoryError(
                "folder is not empty; a new repository needs an empty or new folder", path=root
            )
        config = RepoConfig(
            id=str(uuid.uuid4()),
            created=utc_now(),
            chunk_size=chunk_size,
            group_size=group_size,
            codec=codec or CodecSettings(),
        )
        if not 0 < group_size <= chunk_size:
            raise UserError("chunk sizes must satisfy 0 < group size <= chunk size")
        root.mkdir(parents=True, exist_ok=True)
        repo = cls(root, config, blob_stores)
        repo.blobs.put(CONFIG_KEY, config.to_bytes(), exclusive=True)
        return repo

    @classmethod
    def open(
        cls, root: Path, *, create: bool = False, blob_stores: StoreFactory = LocalBlobStore
    ) -> Repository:
        """Open the repository in ``root``; with ``create``, make it if the folder is new."""
        root = Path(root).absolute()
        config_path = root / CONFIG_KEY
        try:
            data = config_path.read_bytes()
        except FileNotFoundError:
            if create and (not root.exists() or (root.is_dir() and not any(root.iterdir()))):
                return cls.create(root, blob_stores=blob_stores)
            raise RepositoryError(
                "no repository here (run 'modelmanager init' to make one)", path=root
            ) from None
        except OSError as e:
            raise RepositoryError(
                f"cannot read repository config ({e.strerror})", path=root
            ) from None
        return cls(root, RepoConfig.from_bytes(data, config_path), blob_stores)

    # -- writer lock ---------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(
        self, timeout: float = DEFAULT_LOCK_TIMEOUT, on_wait: Callable[[str], None] | None = None,
        ctx: JobContext | None = None,
    ) -> Iterator[None]:  # fmt: skip
        """Hold the writer lock for the block (re-entrant within this object).

        While waiting it watches ``ctx`` (by default the lane job running this thread): once
        cancelled it raises Cancelled without the lock, so the job writes nothing; the lane job
        hears that it waits, and when it stops waiting."""
        job = current_job()
        ctx = ctx or (job.ctx if job is not None else None)
        hear = [h for h in (on_wait, job.waiting if job is not None else None) if h is not None]

        def told(text: str) -> None:
            for h in hear:
                h(text)

        outermost = not self.lock.held
        try:
            self.lock.acquire(timeout, told, ctx.cancel_event.is_set if ctx is not None else None)
        finally:
            if job is not None:
                job.waiting("")
        try:
            # Another process may have changed the devices or the policy since this object read
            # them (a CLI beside the window): a write must never follow a stale policy.
            if outermost and self._layout_stamp() != self._layout_seen:
                self.reload_layout()
            yield
        finally:
            self.lock.release()

    def _require_writer(self) -> None:
        if not self.lock.held:
            raise RuntimeError("repository writes need the writer lock (use repo.writer())")

    # -- checking ------------------------------------------------------------------------

    def metadata_problems(self) -> list[RecordProblem]:
        """Every metadata record (on main or a replica) that is missing, damaged or stale.

        Destructive commands refuse while this is not empty: a record they cannot trust could
        make good data look unused."""
        return []

    # -- writing (under the writer lock) ------------------------------------------------

    def existing_model_name(self, model: str) -> str | None:
        """The stored spelling of a model whose name equals ``model`` ignoring case."""
        folded = model.casefold()
        for name in self.model_names():
            if name.casefold() == folded:
                return name
        return None

    def commit_version(self, manifest: Manifest, labels: tuple[str, ...] = ()) -> int:
        """Write a new version's manifest (chunks must already be flushed), then its labels.

        The manifest is created exclusively: two writers can never both claim a number.
        Returns the manifest's size in bytes.
        """
        self._require_writer()
        crash_point("before-manifest")
        key = manifest_key(manifest.model, manifest.seq)
        body = manifest.to_bytes()
        removal = self.check_not_removed(manifest)
        try:
            size = self.blobs.put(key, body, exclusive=True)
        except FileExistsError:
            raise RepositoryError(
                f"version {manifest.ref} already exists", path=self.root
            ) from None
        crash_point("after-manifest")
        if removal is not None:  # the same version back (pulled again): it is no longer removed
            self.blobs.delete(removed_key(manifest.model, manifest.seq))
        for label in labels:
            self.set_label(manifest.model, label, manifest.seq)
        crash_point("after-labels")
        return size

    def set_label(self, model: str, label: str, seq: int) -> int | None:
        """Point ``label`` at version ``seq``; returns the version it pointed at before."""
        self._require_writer()
        check_label(label)
        if self.blobs.size(manifest_key(model, seq)) is None:
            raise NotFoundError(f"model {model!r} has no version {seq}")
        previous = self.read_labels(model).get(label)
        doc: dict[str, Any] = {"version": seq, "set": utc_now(), "previous": previous}
        self.blobs.put(label_key(model, label), json.dumps(doc).encode())
        return previous

    def check_not_removed(self, manifest: Manifest) -> dict[str, Any] | None:
        """Refuse a version whose number belonged to a removed version of other content.

        The same content may come back (pulled again); returns the removal record then, or
        None when the number was never removed.
        """
        try:
            record = loads_strict(self.blobs.get(removed_key(manifest.model, manifest.seq)))
        except BlobNotFound:
            return None
        except ValueError:
            record = None  # a damaged record: the number still counts as taken
        wanted = content_id(manifest.to_bytes())
        if not (isinstance(record, dict) and record.get("manifest") == wanted):
            raise RepositoryError(
                f"{manifest.ref} was removed from this repository and had other content; its "
                "number is never given to another version", path=self.root,
            )  # fmt: skip
        return record

    def next_seq(self, model: str) -> int:
        """The number a new version of ``model`` gets: never one a removed version had, so a
        reference like ``NAME@3`` names one content for ever (here and on any remote)."""
        used = self.version_numbers(model) + self.removed_numbers(model)
        return max(used) + 1 if used else 1

    def remove_version(self, manifest: Manifest) -> list[str]:
        """Remove one version: record it, drop the labels on it, then delete its manifest.

        The record comes first so its number stays taken whatever happens next; the labels go
        before the manifest so no label ever points at a missing version. Chunks are left to
        the caller (or gc). Returns the labels removed.
        """
        self._require_writer()
        key = manifest_key(manifest.model, manifest.seq)
        record = {
            "version": manifest.seq, "removed": utc_now(), "created": manifest.created,
            "message": manifest.message, "logical_bytes": manifest.logical_bytes,
            "manifest": content_id(manifest.to_bytes()),  # as check_not_removed compares it
        }  # fmt: skip
        self.blobs.put(removed_key(manifest.model, manifest.seq), json.dumps(record).encode())
        crash_point("after-removal-record")
        dropped = sorted(n for n, seq in self.read_labels(manifest.model).items()
                         if seq == manifest.seq)  # fmt: skip
        for label in dropped:
            self.blobs.delete(label_key(manifest.model, label))
        self.blobs.flush()
        crash_point("after-removal-labels")
        self.blobs.delete(key)
        self.blobs.flush()
        return dropped

    def delete_label(self, model: str, label: str) -> int:
        """Remove a label; returns the version it pointed at (NotFoundError if absent)."""
        self._require_writer()
        labels = self.read_labels(model)
        if label not in labels:
            raise NotFoundError(f"model {model!r} has no label {label!r}")
        self.blobs.delete(label_key(model, label))
        self.blobs.flush()
        return labels[label]
