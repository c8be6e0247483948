"""A repository on a local folder: the single owner of its config, manifests and labels.

Write order (an invariant, see docs/repository-format.md): chunk objects (synced) -> the model
named in changes.json (synced) -> manifest (exclusive create, synced) -> labels (journal entry
first) -> catalog row -> changes.json settled when the writer lock is let go; every record
goes to main, then to its copies on the devices. A crash at any point leaves a valid repository: at
worst unreferenced chunks, which ``gc`` removes. "latest" is not stored: it is always the
highest version number, so it can never lag behind a committed version.

Over 500 lines because Repository is the one owner of the writer lock and of every metadata
write, and its checks (``metadata_problems``, ``sync_replicas``) work on the same device and
copy state; what reads the same everywhere is in versions.py, recovery and upgrade apart.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.faults import crash_point
from modelmanager.core.ids import content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.lanes import current_job
from modelmanager.core.placement import (
    DEVICES_FILE,
    IDENTITY_FILE,
    MAIN,
    OFFLINE,
    Device,
    DeviceSet,
    identity_matches,
    read_identity,
    write_identity,
)
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo import journal
from modelmanager.core.repo.changes import EVERYTHING, ChangeRecorder, pending_models
from modelmanager.core.repo.lock import WriterLock
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import ModelIndex, check_label
from modelmanager.core.repo.records import unseal
from modelmanager.core.repo.replicas import (
    BOOTSTRAP_KEYS,
    META,
    Copy,
    CopyProblem,
    ReplicatedRecords,
)
from modelmanager.core.repo.versions import (
    CONFIG_KEY,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_GROUP_SIZE,
    POLICY_KEY,
    REPO_VERSION,
    Policies,
    RecordProblem,
    RepoConfig,
    VersionStore,
    label_key,
    manifest_key,
    removed_key,
    utc_now,
)
from modelmanager.core.storage import (
    BlobNotFound,
    FolderStore,
    LocalBlobStore,
    StoreFactory,
)
from modelmanager.errors import (
    IntegrityError,
    ModelManagerError,
    NotFoundError,
    RepositoryError,
    UserError,
)

#: Seconds a writer waits for another writer before giving up with a clear message.
DEFAULT_LOCK_TIMEOUT = 10.0


class Repository(VersionStore):
    """An open repository. Reads need nothing; writes happen inside :meth:`writer`.

    Every folder's BlobStore (the repository's own, each device's) comes from ``blob_stores``.
    """

    blobs: FolderStore

    def __init__(
        self, root: Path, config: RepoConfig, blob_stores: StoreFactory = LocalBlobStore,
        *, format_version: int = REPO_VERSION,
    ) -> None:  # fmt: skip
        self.root = root
        self.config = config
        self.blob_stores = blob_stores
        self.blobs = blob_stores(root)
        self.format_version = format_version
        self.lock = WriterLock(root / "locks")
        #: Writers name each model before changing it (core/repo/changes.py), for the catalog.
        self.changes = ChangeRecorder(root)
        #: Answers the case-insensitive name check from an index (the catalog registers itself).
        self.model_index: ModelIndex | None = None
        self.reload_layout()

    @property
    def legacy(self) -> bool:
        """True for a format-1 repository not yet upgraded (unsealed records, main only)."""
        return self.format_version < REPO_VERSION

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

    def main_copies(self) -> list[Copy]:
        """Main's own records, and its second copy of the records that find the devices."""
        return [
            Copy(MAIN, str(self.root), self.blobs),
            Copy(f"{MAIN} (second copy)", str(self.root / META),
                 self.blob_stores(self.root / META), lambda key: key in BOOTSTRAP_KEYS),
        ]  # fmt: skip

    def replica_devices(self) -> list[Device]:
        """The devices other than main that hold metadata replicas now: mounted (their
        identity checks) and not set offline."""
        return [
            d for d in self.devices.devices
            if d.name != MAIN and d.state != OFFLINE
            and identity_matches(d.root(self.root), d, self.config.id)
        ]  # fmt: skip

    def reload_layout(self) -> None:
        """(Re)read devices and policies, e.g. after another command changed them."""
        self._layout_seen = self._layout_stamp()
        boot = ReplicatedRecords(self.main_copies(), legacy=self.legacy)
        try:
            self.devices = DeviceSet.from_doc(boot.read(DEVICES_FILE), self.root / DEVICES_FILE)
        except BlobNotFound:
            self.devices = DeviceSet.default(self.config.id)
        except IntegrityError as e:
            raise RepositoryError(
                f"{e.message}; every copy of the device list on main is damaged: rebuild the "
                "repository with 'modelmanager recover' from its devices",
                path=self.root / DEVICES_FILE,
            ) from None
        copies = self.main_copies() + [
            Copy(d.name, str(d.root(self.root) / META), self.blob_stores(d.root(self.root) / META))
            for d in self.replica_devices()
        ]
        self._records = ReplicatedRecords(copies, legacy=self.legacy)
        try:
            self.policies = Policies.from_doc(self.records.read(POLICY_KEY), self.root / POLICY_KEY)
        except BlobNotFound:
            self.policies = Policies()
        except IntegrityError as e:
            # Never guess a policy: a weaker one would make repair delete good copies.
            raise RepositoryError(
                f"{e.message}; no intact copy of the policy: run 'modelmanager recover' or "
                "restore policy.json from a device's meta/ folder", path=self.root / POLICY_KEY,
            ) from None  # fmt: skip
        self.chunks = PlacedChunkStore(
            self.root, self.config.id, self.devices, self.config.codec,
            lambda: self.policies.default, self.blob_stores,
        )  # fmt: skip

    @property
    def replicated(self) -> ReplicatedRecords:
        """The metadata records with all their copies (for survey and heal)."""
        assert isinstance(self._records, ReplicatedRecords)
        return self._records

    def save_devices(self, devices: DeviceSet) -> None:
        """Replace the device list (under the writer lock), reopen the chunk store, and give a
        device that now holds replicas every record it lacks."""
        self._require_writer()
        now = utc_now()
        change = {"kind": "devices", "old": self.devices.to_doc(), "new": devices.to_doc()}
        journal.append(self.records, None, change, now)
        self.records.write(DEVICES_FILE, devices.to_doc() | {"written": now})
        self.reload_layout()
        self.sync_replicas()

    def save_policies(self, policies: Policies) -> None:
        """Replace the redundancy policies (under the writer lock)."""
        self._require_writer()
        new = policies.to_doc()
        old = self.policies.to_doc()
        for doc in (old, new):
            doc.pop("written")
        journal.append(self.records, None, {"kind": "policy", "old": old, "new": new}, utc_now())
        self.records.write(POLICY_KEY, policies.to_doc())
        self.reload_layout()

    def sync_replicas(self) -> list[CopyProblem]:
        """Rewrite every missing, damaged or stale copy of a record from its current content,
        and a damaged device identity whose metadata copy shows the device is ours; returns
        the copies that could not be healed."""
        self._require_writer()
        healed_identity = False
        for device in self.devices.devices:
            root = device.root(self.root)
            if device.name == MAIN or device.state == OFFLINE or not root.is_dir():
                continue
            if (root / IDENTITY_FILE).exists() and read_identity(root) is None:
                try:
                    config = unseal((root / META / CONFIG_KEY).read_bytes(), str(root))
                except (OSError, IntegrityError):
                    continue
                if config.get("id") == self.config.id:
                    write_identity(root, device, self.config.id)
                    healed_identity = True
        if healed_identity:
            self.reload_layout()
        problems = self.survey()
        if problems:
            self.changes.touch(None)  # copies rewritten: let every catalog read everything
        left = self.replicated.heal(problems)
        for model, label, wanted, current in self._labels_off_journal():
            self.apply_label_move(model, label, wanted, current)
        return left

    def apply_label_move(
        self, model: str, label: str, seq: int | None, previous: int | None
    ) -> None:
        """Set a label's current record to what its journal (already written) says, without a
        new journal entry: a label off its journal, or a move received from a remote."""
        self._require_writer()
        self.changes.touch(model)
        now = utc_now()
        doc = {"version": seq, "set": now, "previous": previous, "written": now}
        self.records.write(label_key(model, label), doc)

    def _finish_label_moves(self) -> None:
        """Finish the label moves a killed writer left half done (its journal entry written,
        the label's record not yet): the journal says what was decided. Only the models that
        writer named as pending are read (all of them after a crash of a very large session);
        a move that cannot be finished now is left for verify to report and repair to finish.
        Either way this session settles those models, so no later writer reads them again."""
        pending = pending_models(self.root)
        if not pending:
            return
        models = None if EVERYTHING in pending else pending
        try:
            for model, label, wanted, current in self._labels_off_journal(models):
                self.apply_label_move(model, label, wanted, current)
        except (ModelManagerError, OSError):
            pass  # left as it is: verify names it once this session has settled the models
        self.changes.adopt(pending)

    def _labels_off_journal(
        self, models: set[str] | None = None
    ) -> list[tuple[str, str, int | None, int | None]]:
        """(model, label, what the journal says, what the label record says) for every label
        of ``models`` (None: of every model) whose record disagrees with the last journal
        entry about it."""
        off = []
        for model in self._models_on_any_copy() if models is None else sorted(models):
            records = self.label_records(model)
            for label, wanted in journal.last_label_moves(self.records, model).items():
                if label not in records and self.records.exists(label_key(model, label)):
                    continue  # damaged: reported as such, and healed from a copy first
                current = records.get(label, {}).get("version")
                if current != wanted:
                    off.append((model, label, wanted, current))
        return off

    def survey(self) -> list[CopyProblem]:
        """Every copy of a metadata record that is missing, damaged, stale or left behind."""
        gone = {manifest_key(model, n) for model in self._models_on_any_copy()
                for n in self._left_behind(model)}  # fmt: skip
        return self.replicated.survey(["models", journal.REPOSITORY_JOURNAL], gone.__contains__)

    def _models_on_any_copy(self) -> set[str]:
        return {key.split("/")[1].replace("~", "/") for key, _s in self.records.keys("models")
                if key.count("/") == 3}  # fmt: skip

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
        # The device list and policy are written even when they say "main only, one copy":
        # an absent record then always means damage, never a default to fall back to.
        with repo.writer():
            repo.records.write(DEVICES_FILE, repo.devices.to_doc() | {"written": utc_now()})
            repo.records.write(POLICY_KEY, repo.policies.to_doc())
            repo.records.write(CONFIG_KEY, config.to_doc(), exclusive=True)
        return repo

    @classmethod
    def open(
        cls, root: Path, *, create: bool = False, blob_stores: StoreFactory = LocalBlobStore
    ) -> Repository:
        """Open the repository in ``root``; with ``create``, make it if the folder is new.

        A format-1 repository is upgraded in place (see core/repo/upgrade.py); one that cannot
        be written (a read-only mount) is opened for reading only."""
        root = Path(root).absolute()
        found = read_config(root, blob_stores)
        if found is None:
            if create and (not root.exists() or (root.is_dir() and not any(root.iterdir()))):
                return cls.create(root, blob_stores=blob_stores)
            raise RepositoryError(
                "no repository here (run 'modelmanager init' to make one)", path=root
            )
        config, version = found
        repo = cls(root, config, blob_stores, format_version=version)
        if repo.legacy:
            from modelmanager.core.repo.upgrade import upgrade_in_place

            upgrade_in_place(repo)
        return repo

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

        if self.legacy:
            raise RepositoryError(
                f"this repository is format {self.format_version} and could not be upgraded "
                f"to format {REPO_VERSION} (is it read-only?); it can be read, not changed",
                path=self.root,
            )
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
            if outermost:
                self._finish_label_moves()
            yield
        finally:
            if outermost:
                self.changes.settle()  # before another writer can start
            self.lock.release()

    def _require_writer(self) -> None:
        if not self.lock.held:
            raise RuntimeError("repository writes need the writer lock (use repo.writer())")

    # -- checking ------------------------------------------------------------------------

    def metadata_problems(self, *, copies: bool = False) -> list[RecordProblem]:
        """Metadata records that fail their check, or are missing or stale on main.

        Destructive commands refuse while this is not empty: a record they cannot trust could
        make good data look unused. With ``copies``, also the replicas that are only missing
        or out of date on a device (verify and scrub report them; repair rewrites them)."""
        if self.legacy:
            return [RecordProblem(str(self.root / CONFIG_KEY),
                                  f"format {self.format_version}, not upgraded")]  # fmt: skip
        problems = [
            RecordProblem(p.where, f"{p.what} (the copy on {p.copy})")
            for p in self.survey()
            if copies or p.copy == MAIN or p.what not in ("missing", "stale")
        ]
        # A model a writer named as pending is being changed now, or was by a writer that was
        # killed: its label move is finished by the next writer (_finish_label_moves), not
        # damage. With "anything pending" every label is left to that writer.
        pending = pending_models(self.root)
        off = ([] if EVERYTHING in pending
               else self._labels_off_journal(self._models_on_any_copy() - pending))  # fmt: skip
        for model, label, wanted, current in off:
            problems.append(RecordProblem(
                str(self.root / label_key(model, label)),
                f"label {model}@{label} points at {_version(current)}, its journal says "
                f"{_version(wanted)}",
            ))  # fmt: skip
        for key in (CONFIG_KEY, DEVICES_FILE, POLICY_KEY):
            if not self.records.exists(key):
                problems.append(RecordProblem(str(self.root / key), "missing on every copy"))
        for device in self.devices.devices:
            root = device.root(self.root)
            if device.name == MAIN or device.state == OFFLINE or not root.is_dir():
                continue
            if (root / IDENTITY_FILE).exists() and read_identity(root) is None:
                what = f"damaged identity of device {device.name}"
                problems.append(RecordProblem(str(root / IDENTITY_FILE), what))
        return problems

    def hint_names(self) -> list[str]:
        """The index's model names when there is one (one query), else the folders'."""
        if self.model_index is not None:
            return self.model_index.model_names()
        return self.model_names()

    # -- writing (under the writer lock) ------------------------------------------------

    def existing_model_name(self, model: str) -> str | None:
        """The stored spelling of a model whose name equals ``model`` ignoring case.

        Every import asks: the index answers when there is one (the catalog, brought up to date
        first), else one listing of ``models/`` per copy, looking into matching folders only."""
        if self.model_index is not None:
            return self.model_index.existing_model_name(model)
        folded = model.casefold()
        for folder in sorted(self.records.folders("models")):
            name = folder.replace("~", "/")
            if name.casefold() != folded:
                continue
            try:
                if self.version_numbers(name):
                    return name
            except UserError:
                continue  # not a model's folder (a name no model may have)
        return None

    def commit_version(self, manifest: Manifest, labels: tuple[str, ...] = ()) -> int:
        """Write a new version's manifest (chunks must already be flushed), then its labels.

        The manifest is created exclusively: two writers can never both claim a number.
        Returns the manifest's size in bytes.
        """
        self._require_writer()
        self.changes.touch(manifest.model)
        crash_point("before-manifest")
        key = manifest_key(manifest.model, manifest.seq)
        removal = self.check_not_removed(manifest)
        if removal is None and self.records.exists(key):
            raise RepositoryError(f"version {manifest.ref} already exists", path=self.root)
        try:
            size = self.records.write(key, manifest.to_json(), exclusive=removal is None)
        except FileExistsError:
            raise RepositoryError(
                f"version {manifest.ref} already exists", path=self.root
            ) from None
        crash_point("after-manifest")
        if removal is not None:  # the same version back (pulled again): it is no longer removed
            now = utc_now()
            self.records.write(removed_key(manifest.model, manifest.seq),
                               removal | {"restored": now, "written": now})  # fmt: skip
        for label in labels:
            self.set_label(manifest.model, label, manifest.seq)
        crash_point("after-labels")
        return size

    def _write_label(
        self, model: str, label: str, seq: int | None, previous: int | None, why: str
    ) -> None:
        """The journal entry first (the truth), then the label's current record."""
        self.changes.touch(model)
        now = utc_now()
        entry = {"kind": "label", "label": label, "old": previous, "new": seq, "why": why}
        journal.append(self.records, model, entry, now)
        crash_point("after-label-journal")
        doc: dict[str, Any] = {"version": seq, "set": now, "previous": previous, "written": now}
        self.records.write(label_key(model, label), doc)

    def label_log(self, model: str) -> list[dict[str, Any]]:
        """Every move of every label of ``model``, oldest first (time, host, user, old, new)."""
        return [e for e in journal.entries(self.records, model) if e.get("kind") == "label"]

    def repository_log(self) -> list[dict[str, Any]]:
        """Every policy, codec and device change, oldest first."""
        return journal.entries(self.records, None)

    def set_label(self, model: str, label: str, seq: int) -> int | None:
        """Point ``label`` at version ``seq``; returns the version it pointed at before."""
        self._require_writer()
        check_label(label)
        if seq not in self.version_numbers(model):
            raise NotFoundError(f"model {model!r} has no version {seq}")
        previous = self.read_labels(model).get(label)
        self._write_label(model, label, seq, previous, "set")
        return previous

    def check_not_removed(self, manifest: Manifest) -> dict[str, Any] | None:
        """Refuse a version whose number belonged to a removed version of other content.

        The same content may come back (pulled again); returns the removal record then, or
        None when the number was never removed (or its version was already brought back).
        """
        key = removed_key(manifest.model, manifest.seq)
        try:
            record: dict[str, Any] | None = self.records.read(key)
        except BlobNotFound:
            return None
        except IntegrityError:
            record = None  # a damaged record: the number still counts as taken
        if record is not None and record.get("restored"):
            return None
        wanted = content_id(manifest.to_bytes())
        if not (record is not None and record.get("manifest") == wanted):
            raise RepositoryError(
                f"{manifest.ref} was removed from this repository and had other content; its "
                "number is never given to another version", path=self.root,
            )  # fmt: skip
        return record

    def next_seq(self, model: str) -> int:
        """The number a new version of ``model`` gets: never one a removed version had, so a
        reference like ``NAME@3`` names one content for ever (here and on any remote)."""
        used = self._numbers(model, "versions") + self._numbers(model, "removed")
        return max(used) + 1 if used else 1

    def remove_version(self, manifest: Manifest) -> list[str]:
        """Remove one version: record it, drop the labels on it, then delete its manifest.

        The record comes first so its number stays taken whatever happens next; the labels go
        before the manifest so no label ever points at a missing version. Chunks are left to
        the caller (or gc). Returns the labels removed.
        """
        self._require_writer()
        self.changes.touch(manifest.model)
        key = manifest_key(manifest.model, manifest.seq)
        now = utc_now()
        record = {
            "version": manifest.seq, "removed": now, "created": manifest.created,
            "message": manifest.message, "logical_bytes": manifest.logical_bytes,
            "manifest": content_id(manifest.to_bytes()),  # as check_not_removed compares it
            "written": now,
        }  # fmt: skip
        self.records.write(removed_key(manifest.model, manifest.seq), record)
        crash_point("after-removal-record")
        dropped = sorted(n for n, seq in self.read_labels(manifest.model).items()
                         if seq == manifest.seq)  # fmt: skip
        for label in dropped:
            self._write_label(manifest.model, label, None, manifest.seq, "version removed")
        self.records.flush()
        crash_point("after-removal-labels")
        self.records.delete(key)
        return dropped

    def delete_label(self, model: str, label: str) -> int:
        """Remove a label; returns the version it pointed at (NotFoundError if absent).

        The label's record stays, pointing at nothing, so a copy on a device that was away
        cannot bring the label back."""
        self._require_writer()
        labels = self.read_labels(model)
        if label not in labels:
            raise NotFoundError(f"model {model!r} has no label {label!r}")
        self._write_label(model, label, None, labels[label], "removed")
        return labels[label]


def _version(seq: int | None) -> str:
    return "no version (removed)" if seq is None else str(seq)


def read_config(
    root: Path, blob_stores: StoreFactory = LocalBlobStore
) -> tuple[RepoConfig, int] | None:
    """The config of the repository in ``root`` and its format version, from main's first
    intact copy; None when there is none at all (no repository here)."""
    main = blob_stores(root)
    second = Copy(f"{MAIN} (second copy)", str(root / META), blob_stores(root / META))
    copies = [Copy(MAIN, str(root), main), second]
    try:
        try:
            doc = ReplicatedRecords(copies).read(CONFIG_KEY)
        except IntegrityError:
            # Format 1 wrote no checksums; only a config that says so may lack one.
            doc = ReplicatedRecords(copies, legacy=True).read(CONFIG_KEY)
            if doc.get("version") != 1:
                raise
    except BlobNotFound:
        return None
    except IntegrityError as e:
        raise RepositoryError(
            f"{e.message}; no intact copy of the repository config: rebuild it with "
            "'modelmanager recover' from the repository's devices", path=root / CONFIG_KEY,
        ) from None  # fmt: skip
    except OSError as e:
        raise RepositoryError(
            f"cannot read repository config ({e.strerror})", path=root / CONFIG_KEY
        ) from None
    return RepoConfig.from_doc(doc, root / CONFIG_KEY)
