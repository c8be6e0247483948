"""What a repository stores, read the same way wherever it is: config, policies, record keys,
and the versions and labels under ``models/`` (:class:`VersionStore`).

A local repository (core/repo/repository.py) and a remote one (core/remote/layout.py) are both
VersionStores; only the local one writes metadata copies to its devices and takes the writer
lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelmanager.core.codecs import CodecSettings
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.hints import did_you_mean, number_ranges
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import Ref, model_key, parse_ref
from modelmanager.core.repo.records import seal, unseal
from modelmanager.core.repo.replicas import Records, SingleRecords
from modelmanager.core.storage import BlobNotFound, BlobStore
from modelmanager.errors import IntegrityError, NotFoundError, RepositoryError, UserError

REPO_FORMAT = "modelmanager-repository"
REPO_VERSION = 2
#: Format 1 (records not sealed, metadata only on main) is read, and upgraded in place on open.
READABLE_VERSIONS = (1, 2)
CONFIG_KEY = "config.json"
POLICY_KEY = "policy.json"
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
DEFAULT_GROUP_SIZE = 64 * 1024


@dataclass(frozen=True)
class RepoConfig:
    """What ``config.json`` holds: identity, format version, chunking and codec defaults."""

    id: str
    created: str
    chunk_size: int = DEFAULT_CHUNK_SIZE
    group_size: int = DEFAULT_GROUP_SIZE
    codec: CodecSettings = field(default_factory=CodecSettings)

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": REPO_FORMAT,
            "version": REPO_VERSION,
            "id": self.id,
            "created": self.created,
            "chunking": {"chunk_size": self.chunk_size, "group_size": self.group_size},
            "codec": asdict(self.codec),
        }

    def to_bytes(self) -> bytes:
        """The sealed record (as every copy of ``config.json`` stores it)."""
        return seal(self.to_doc())

    @classmethod
    def from_bytes(cls, data: bytes, source: Path | str) -> RepoConfig:
        """Read a config of format 2 (sealed) or 1 (not yet sealed: upgraded on open)."""
        return cls.from_doc(unseal(data, str(source), legacy=True), source)[0]

    @classmethod
    def from_doc(cls, doc: dict[str, Any], source: Path | str) -> tuple[RepoConfig, int]:
        """The config and its format version; RepositoryError when it is not one we read."""
        try:
            if doc.get("format") != REPO_FORMAT:
                raise RepositoryError("not a ModelManager repository config", path=source)
            version = doc.get("version")
            if version not in READABLE_VERSIONS:
                raise RepositoryError(
                    f"repository format {version!r} is not one this ModelManager "
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
        return config, int(version)


@dataclass(frozen=True)
class Policies:
    """Redundancy policies: the repository default and per-model overrides (``policy.json``)."""

    default: Policy = field(default_factory=Policy)
    models: dict[str, Policy] = field(default_factory=dict)
    #: Codec overrides: "*" for the repository (else config.json's), or a model name.
    codecs: dict[str, CodecSettings] = field(default_factory=dict)

    def for_model(self, model: str) -> Policy:
        return self.models.get(model, self.default)

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": 1,
            "default": str(self.default),
            "models": {k: str(v) for k, v in sorted(self.models.items())},
            "codecs": {k: asdict(v) for k, v in sorted(self.codecs.items())},
            "written": utc_now(),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any], source: Path | str) -> Policies:
        try:
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
    """Models, versions and labels as stored under ``models/``, as sealed records.

    The read side of a repository: a local one (Repository, records on every device) and a
    remote one (on S3, HTTP or a shared folder, records kept once) read their versions the same
    way, and validate them the same way.
    """

    blobs: BlobStore
    _records: Records | None = None

    @property
    def records(self) -> Records:
        """Where the metadata records are (a remote: its one store, older unsealed ones read)."""
        if self._records is None:
            self._records = SingleRecords(self.blobs, legacy=True)
        return self._records

    def model_names(self) -> list[str]:
        """Every model with at least one version, read from the folders (the truth)."""
        names = set()
        for key, _size in self.manifest_keys():
            names.add(key.split("/")[1].replace("~", "/"))
        return sorted(names)

    def hint_names(self) -> list[str]:
        """The model names a not-found message picks close ones from (an indexed repository
        answers from its index: listing 10,000 models' folders takes a second)."""
        return self.model_names()

    def missing_model(self, model: str) -> NotFoundError:
        """The error for ``model`` having no version here, naming the close ones."""
        return NotFoundError(f"no model named {model!r}{did_you_mean(model, self.hint_names())}")

    def manifest_keys(self) -> Iterator[tuple[str, int]]:
        """Every manifest of a version that exists, as (key, size): one listing of the
        records, and the removal records read only for models that have some."""
        yield from self.listing()[0]

    def listing(self) -> tuple[list[tuple[str, int]], dict[str, list[str]]]:
        """From one listing of ``models/``: what :meth:`manifest_keys` yields, and the label
        record keys of each model that has a version (what :meth:`label_keys` lists), so a
        catalog sync need not list 10,000 ``labels/`` folders one by one."""
        versions: list[tuple[str, int]] = []
        removed: set[str] = set()
        labels: dict[str, list[str]] = {}
        for key, size in self.records.keys("models"):
            parts = key.split("/")
            if len(parts) >= 4 and parts[2] == "labels":
                labels.setdefault(parts[1], []).append(key)
            elif len(parts) == 4 and parts[3].endswith(".json"):
                if parts[2] == "versions":
                    versions.append((key, size))
                elif parts[2] == "removed":
                    removed.add(parts[1])
        gone = {m: set(self._left_behind(m.replace("~", "/"))) for m in removed}
        kept = []
        for key, size in versions:
            model_dir, stem = key.split("/")[1], key.rsplit("/", 1)[-1].removesuffix(".json")
            if not (model_dir in gone and stem.isdigit() and int(stem) in gone[model_dir]):
                kept.append((key, size))
        having = {key.split("/")[1] for key, _size in kept}
        return kept, {d.replace("~", "/"): keys for d, keys in labels.items() if d in having}

    def model_manifest_keys(self, model: str) -> list[tuple[str, int]]:
        """Every manifest of a version of ``model`` that exists, as (key, size): one listing of
        its ``versions/`` folder on each copy (what :meth:`manifest_keys` says of it)."""
        gone = set(self._left_behind(model))
        found = []
        for key, size in self.records.keys(f"{model_key(model)}/versions"):
            stem = key.rsplit("/", 1)[-1].removesuffix(".json")
            if (
                key.count("/") == 3
                and key.endswith(".json")
                and not (stem.isdigit() and int(stem) in gone)
            ):
                found.append((key, size))
        return found

    def _left_behind(self, model: str) -> list[int]:
        """Removed versions whose manifest is still on some copy, but not on the primary: a
        device that was away when the version was removed. They do not exist.

        (A removal that stopped before it deleted the primary's manifest leaves the version
        there; running ``rm`` again finishes it.)"""
        return [n for n in self.removed_numbers(model)
                if not self.records.on_primary(manifest_key(model, n))]  # fmt: skip

    def _numbers(self, model: str, folder: str) -> list[int]:
        seqs = []
        for key, _size in self.records.keys(f"{model_key(model)}/{folder}"):
            stem = key.rsplit("/", 1)[-1].removesuffix(".json")
            if stem.isdigit():
                seqs.append(int(stem))
        return sorted(seqs)

    def version_numbers(self, model: str) -> list[int]:
        """The versions of ``model``, ascending (empty when the model does not exist)."""
        removed = set(self._left_behind(model))
        return [n for n in self._numbers(model, "versions") if n not in removed]

    def removed_numbers(self, model: str) -> list[int]:
        """Versions of ``model`` that were removed (and not brought back), ascending."""
        out = []
        for seq in self._numbers(model, "removed"):
            try:
                record = self.records.read(removed_key(model, seq))
            except (BlobNotFound, IntegrityError):
                out.append(seq)  # a damaged record: the number still counts as taken
                continue
            if not record.get("restored"):
                out.append(seq)
        return out

    def read_manifest_key(self, key: str) -> Manifest:
        """Load and validate the manifest stored under ``key``."""
        try:
            doc = self.records.read(key)
        except BlobNotFound:
            raise NotFoundError("no such version", path=key) from None
        manifest = Manifest.from_doc(doc, key)
        if manifest_key(manifest.model, manifest.seq) != key:
            raise IntegrityError(
                f"manifest says it is {manifest.ref}, but is stored as {key}", path=key
            )
        return manifest

    def read_manifest(self, model: str, seq: int) -> Manifest:
        """Version ``seq`` of ``model``; NotFoundError when absent."""
        if seq not in self.version_numbers(model):
            raise NotFoundError(f"model {model!r} has no version {seq}")
        return self.read_manifest_key(manifest_key(model, seq))

    def label_keys(self, model: str) -> list[str]:
        """The keys of every label record of ``model``, listed."""
        return [key for key, _size in self.records.keys(f"{model_key(model)}/labels")]

    def label_records(
        self, model: str, keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Every label record of ``model`` (a removed label is a record whose version is
        null, so a copy left on a device that was away cannot bring it back); ``keys``: its
        record keys when already listed (:meth:`listing`)."""
        out = {}
        for key in self.label_keys(model) if keys is None else keys:
            name = key.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                out[name] = self.records.read(key)
            except (BlobNotFound, IntegrityError):
                continue  # a damaged label is reported by verify, not fatal to reading
        return out

    def read_labels(self, model: str, keys: Iterable[str] | None = None) -> dict[str, int]:
        """The labels of ``model`` and the versions they point at (``keys`` as for
        :meth:`label_records`)."""
        labels = {}
        for name, doc in self.label_records(model, keys).items():
            version = doc.get("version")
            if isinstance(version, int) and not isinstance(version, bool):
                labels[name] = version
        return labels

    def resolve(self, ref: str | Ref) -> Manifest:
        """The manifest a reference names; NotFoundError with what exists otherwise."""
        r = parse_ref(ref) if isinstance(ref, str) else ref
        seqs = self.version_numbers(r.model)
        if not seqs:
            raise self.missing_model(r.model)
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
