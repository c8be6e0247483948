"""Versions and labels: list, show, diff, move a label (rollback), remove a label or a version.

Composition: removing a version decides which chunks are unused with
:func:`services.maintenance.all_manifests`, the same rule (refuse while a manifest is
unreadable) garbage collection uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelmanager.core.analysis import VersionDiff, diff
from modelmanager.core.catalog import ModelRow, VersionRow
from modelmanager.core.faults import crash_point
from modelmanager.core.gcpause import paused_gc
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import FileRecord, Manifest, ManifestCache
from modelmanager.core.repo.names import check_label, parse_ref
from modelmanager.core.repo.records import unseal
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.core.repo.versions import manifest_key
from modelmanager.core.storage import BlobNotFound
from modelmanager.errors import ModelManagerError, UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.maintenance import all_manifests
from modelmanager.services.pin_records import release_pin
from modelmanager.services.safety import refuse_on_doubt, reporting


def list_models(ws: Workspace) -> list[ModelRow]:
    """Every model with its newest version's figures."""
    return ws.catalog.models()


@dataclass(frozen=True)
class ModelsRead:
    """Some models as the catalog now has them (None: gone) and their versions newest first:
    what a front needs to refresh only those models."""

    models: dict[str, ModelRow | None]
    versions: dict[str, list[VersionRow]]


def model_row(versions: Sequence[VersionRow], stored: int | None = None) -> ModelRow:
    """The row :meth:`Catalog.models` gives a model, made from its versions (newest first)
    and its kept size on disk: a few models re-read without listing all 10,000."""
    top = versions[0]
    labels = {label: v.seq for v in versions for label in v.labels}
    return ModelRow(top.model, len(versions), top.seq, top.created, top.logical_bytes,
                    top.parameters, labels, top.facts.architecture,
                    json.dumps(top.dtypes), stored)  # fmt: skip


def read_models(ws: Workspace, names: Iterable[str]) -> ModelsRead:
    """The catalog's rows of the models ``names`` (a job's Changes name them), for a refresh
    of those rows alone: one query per model, not a listing of every model."""
    versions = {name: ws.catalog.versions(name) for name in set(names)}
    stored = ws.catalog.stored_bytes() if versions else {}
    found = {name: model_row(vs, stored.get(name)) if vs else None
             for name, vs in versions.items()}  # fmt: skip
    return ModelsRead(found, {name: vs for name, vs in versions.items() if vs})


#: Reading more models' versions than this reads every version in one query instead.
ONE_QUERY_FROM = 20


def versions_of(ws: Workspace, names: Iterable[str]) -> dict[str, list[VersionRow]]:
    """The versions of the models ``names``, newest first (the library tree reads them for the
    models it opens or a search found, not for all 10,000)."""
    wanted = list(dict.fromkeys(names))
    if len(wanted) > ONE_QUERY_FROM:
        every = ws.catalog.all_versions()
        return {name: every.get(name, []) for name in wanted}
    return {name: ws.catalog.versions(name) for name in wanted}


def log(ws: Workspace, model: str) -> list[VersionRow]:
    """Versions of ``model``, newest first; NotFoundError for an unknown model."""
    ref = parse_ref(model)
    rows = ws.catalog.versions(ref.model)
    if not rows:
        raise ws.repo.missing_model(ref.model)
    return rows


def show(ws: Workspace, ref: str) -> tuple[Manifest, dict[str, int]]:
    """The manifest a reference names and the labels of its model."""
    manifest = ws.repo.resolve(ref)
    return manifest, ws.repo.read_labels(manifest.model)


def diff_refs(ws: Workspace, a: str, b: str) -> VersionDiff:
    """What changed from version ``a`` to version ``b`` (any two versions, any models)."""
    return diff(ws.repo.resolve(a), ws.repo.resolve(b))


@dataclass(frozen=True)
class LabelResult:
    """A label move: which label, where it points now and where it pointed before."""

    model: str
    label: str
    seq: int | None
    previous: int | None
    changes: Changes

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "label": self.label, "version": self.seq,
                "previous": self.previous}  # fmt: skip


def set_label(
    ws: Workspace, ref: str, label: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> LabelResult:
    """Point ``label`` at the version ``ref`` names; the old target is returned (undo)."""
    check_label(label)
    with ws.repo.writer(lock_timeout):
        manifest = ws.repo.resolve(ref)
        previous = ws.repo.set_label(manifest.model, label, manifest.seq)
        ws.catalog.refresh_labels(manifest.model)
    return LabelResult(
        manifest.model, label, manifest.seq, previous, Changes(frozenset({manifest.model}))
    )


def remove_label(
    ws: Workspace, model: str, label: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> LabelResult:
    """Remove a label from a model; the version it pointed at is returned (undo)."""
    name = parse_ref(model).model
    with ws.repo.writer(lock_timeout):
        previous = ws.repo.delete_label(name, check_label(label))
        ws.catalog.refresh_labels(name)
    return LabelResult(name, label, None, previous, Changes(frozenset({name})))


@dataclass(frozen=True)
class VersionDetails:
    """A version with what the GUI shows beside it: labels and each chunk's stored size/codec."""

    manifest: Manifest
    labels: dict[str, int]
    chunk_stored: dict[str, int]
    chunk_codec: dict[str, int]

    @property
    def stored_bytes(self) -> int:
        return sum(self.chunk_stored.values())

    def tensor_storage(self) -> list[tuple[int, int]]:
        """(stored bytes, codec id) per tensor of ``manifest.tensors`` (shared chunks pro rata;
        the codec of the first chunk it spans that has one): :meth:`storage_columns` paired."""
        return list(zip(*self.storage_columns(), strict=True))

    def storage_columns(self) -> tuple[list[int], list[int]]:
        """:meth:`tensor_storage` as two columns, stored bytes and codec ids, in tensor order:
        two lists of numbers, not 100,000 pairs for the collector to walk.

        Per file, the chunks a tensor spans are found by binary search over the chunks' ends
        (they tile the file in order), in numpy for the common tensor that lies in one chunk;
        only tensors spanning several chunks take a Python loop. A 100,000-tensor version is
        shown the moment it is selected (a loop over every tensor in Python took 0.36 s)."""
        sizes: list[int] = []
        codecs: list[int] = []
        for f in self.manifest.files:
            size, codec = self._file_storage(f)
            sizes += size
            codecs += codec
        return sizes, codecs

    def _file_storage(self, f: FileRecord) -> tuple[list[int], list[int]]:
        n, m = len(f.tensors), len(f.chunks)
        if n == 0:
            return [], []
        if m == 0:
            return [0] * n, [-1] * n
        lens = np.fromiter((c.length for c in f.chunks), np.int64, m)
        cend = np.cumsum(lens)
        cstart = cend - lens
        stored = np.fromiter((self.chunk_stored.get(c.id, 0) for c in f.chunks), np.float64, m)
        codecs = np.fromiter((self.chunk_codec.get(c.id, -1) for c in f.chunks), np.int64, m)
        columns = f.tensor_columns  # no record made: 100,000 of them took 0.1 s
        ts = np.array(columns.starts, np.int64)
        te = np.array(columns.ends, np.int64)
        first = np.searchsorted(cend, ts, side="right")  # the first chunk ending after start
        last = np.searchsorted(cstart, te, side="left")  # chunks starting before the end
        k = np.minimum(first, m - 1)
        overlap = np.minimum(cend[k], te) - np.maximum(cstart[k], ts)
        one = (last - first <= 1) & (first < m) & (overlap > 0)
        # The same float operations, in the same order, as the loop below: equal answers.
        per = np.maximum(lens[k], 1)  # an empty chunk spans nothing (``one`` is False)
        size = np.where(one, np.rint(stored[k] * overlap / per), 0).astype(np.int64).tolist()
        codec = np.where(one, codecs[k], -1).tolist()
        for i in np.flatnonzero(last - first > 1).tolist():  # tensors across several chunks
            start, end, total, kind = columns.starts[i], columns.ends[i], 0.0, -1
            for j in range(int(first[i]), int(last[i])):
                lo, hi = max(int(cstart[j]), start), min(int(cend[j]), end)
                if hi > lo:
                    total += stored[j] * (hi - lo) / int(lens[j])
                    kind = int(codecs[j]) if kind == -1 else kind
            size[i], codec[i] = round(total), kind
        return size, codec


#: Manifests read for the window, by their bytes' hash (see :func:`cached_manifest`).
MANIFESTS = ManifestCache()


def cached_manifest(ws: Workspace, ref: str) -> Manifest:
    """The manifest ``ref`` names, as :meth:`Repository.resolve` reads it; parsed and checked
    once per content: when the primary copy's bytes hash as they did, the manifest made from
    them then is given again (a 100,000-tensor version selected again, or re-read after a
    label moved, costs a read and a hash). Anything unusual (a damaged primary, a missing
    version or label) goes the ordinary way, which reads the best copy or says what is wrong."""
    r = parse_ref(ref)
    seqs = ws.repo.version_numbers(r.model)
    if r.seq is not None:
        seq: int | None = r.seq
    elif r.label is not None:
        seq = ws.repo.read_labels(r.model).get(r.label)
    else:
        seq = seqs[-1] if seqs else None
    if seq is None or seq not in seqs:
        return ws.repo.resolve(ref)  # says what exists
    key = manifest_key(r.model, seq)
    try:
        data = ws.repo.blobs.get(key)
    except (BlobNotFound, OSError):
        return ws.repo.resolve(ref)
    place, digest = f"{ws.repo.root}\0{key}", MANIFESTS.digest(data)
    manifest = MANIFESTS.get(place, digest)
    if manifest is not None:
        return manifest
    try:
        with paused_gc():  # the record's 200,000 JSON lists are gone before any collection
            manifest = Manifest.from_doc(unseal(data, key, legacy=ws.repo.legacy), key)
    except ModelManagerError:
        return ws.repo.resolve(ref)  # the primary copy is damaged: the best intact one
    if manifest_key(manifest.model, manifest.seq) != key:
        return ws.repo.resolve(ref)  # says it is stored under another name
    MANIFESTS.put(place, digest, manifest)
    return manifest


def version_details(ws: Workspace, ref: str) -> VersionDetails:
    """Everything the GUI's Overview and Tensors tabs need about one version (reads chunks;
    the manifest from :data:`MANIFESTS` when read before)."""
    manifest = cached_manifest(ws, ref)
    stored: dict[str, int] = {}
    codec: dict[str, int] = {}
    for cid in manifest.chunk_ids():
        stored[cid] = ws.repo.chunks.stored_size(cid) or 0
        try:
            codec[cid] = ws.repo.chunks.header(cid).codec_id
        except ModelManagerError:
            codec[cid] = -1
    return VersionDetails(manifest, ws.repo.read_labels(manifest.model), stored, codec)


# -- removing versions -------------------------------------------------------------------


@dataclass(frozen=True)
class RemovalPlan:
    """What removing some versions takes away, and the exact bytes it frees.

    ``freed`` are the chunks no other version uses, with the bytes all their pieces take on the
    devices; chunks shared with a kept version stay. ``children`` are kept versions whose parent
    goes: their history keeps the number, shown as removed.
    """

    refs: tuple[str, ...]
    labels: tuple[str, ...]  # "model@label" for every label that goes with its version
    children: tuple[str, ...]
    emptied: tuple[str, ...]  # models left with no version
    logical_bytes: int
    freed: tuple[tuple[str, int], ...]
    shared_chunks: int

    @property
    def freed_bytes(self) -> int:
        return sum(size for _cid, size in self.freed)

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": list(self.refs), "labels": list(self.labels),
            "children": list(self.children), "emptied_models": list(self.emptied),
            "logical_bytes": self.logical_bytes, "freed_chunks": len(self.freed),
            "freed_bytes": self.freed_bytes, "shared_chunks": self.shared_chunks,
        }  # fmt: skip


@dataclass(frozen=True)
class RemovalResult:
    plan: RemovalPlan
    freed_bytes: int
    changes: Changes = field(default_factory=Changes)


def _named_versions(ws: Workspace, refs: Sequence[str]) -> list[Manifest]:
    """The versions ``refs`` name; a bare model name is refused (it would mean "the newest",
    and removing whichever version is newest by accident is not a thing to guess about)."""
    if not refs:
        raise UserError("name the versions to remove, e.g. NAME@3 or NAME@old")
    found: dict[str, Manifest] = {}
    for text in refs:
        if "@" not in text:
            raise UserError(f"{text!r} names a model, not a version: use {text}@N or "
                            f"{text}@LABEL ('modelmanager log {text}' lists them)")  # fmt: skip
        manifest = ws.repo.resolve(parse_ref(text))
        found.setdefault(manifest.ref, manifest)
    return list(found.values())


def _plan_removal(ws: Workspace, refs: Sequence[str]) -> tuple[RemovalPlan, list[Manifest]]:
    """The plan, and the manifests of the versions it removes (read once, every manifest)."""
    going = _named_versions(ws, refs)
    names = frozenset(m.ref for m in going)
    kept = [m for m in all_manifests(ws, "remove a version") if m.ref not in names]
    kept_ids = set().union(*(m.chunk_ids() for m in kept))
    ids = set().union(*(m.chunk_ids() for m in going))
    labels, emptied = [], []
    for model in sorted({m.model for m in going}):
        seqs = {m.seq for m in going if m.model == model}
        labels += [f"{model}@{name}" for name, seq in sorted(ws.repo.read_labels(model).items())
                   if seq in seqs]  # fmt: skip
        if not any(m.model == model for m in kept):
            emptied.append(model)
    children = sorted((m.ref for m in kept if m.parent is not None
                       and f"{m.model}@{m.parent}" in names), key=_ref_order)  # fmt: skip
    freed = tuple(sorted((c, ws.repo.chunks.stored_size(c) or 0) for c in ids - kept_ids))
    plan = RemovalPlan(
        tuple(sorted(names)), tuple(labels), tuple(children), tuple(emptied),
        sum(m.logical_bytes for m in going), freed, len(ids & kept_ids),
    )  # fmt: skip
    return plan, going


def _ref_order(ref: str) -> tuple[str, int]:
    model, _, seq = ref.partition("@")
    return model, int(seq)


REMOVE = "remove versions"


def plan_removal(ws: Workspace, refs: Sequence[str]) -> RemovalPlan:
    """Preview removing the versions ``refs`` name (``NAME@N`` or ``NAME@label``); no change.

    Refused on the doubts removing would be refused on (bar the write probe), so a preview
    never promises what the removal then refuses."""
    refuse_on_doubt(ws, REMOVE, writes=False)
    return _plan_removal(ws, refs)[0]


def remove_versions(
    ws: Workspace, refs: Sequence[str], *, force: bool = False, ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> RemovalResult:  # fmt: skip
    """Remove versions and delete the chunks only they used, under the writer lock.

    A version carrying a label is removed only with ``force`` (a label is somebody's pointer,
    "prod" say). Each version goes as :meth:`Repository.remove_version` orders it, then its
    catalog row; its chunks go last, so a crash leaves at worst unused chunks for gc.
    """
    given, ctx = ctx, ctx or JobContext()  # the caller's own ctx is watched while waiting
    with ws.repo.writer(lock_timeout, ctx=given):
        ws.repo.chunks.refresh()
        # Before the first change: metadata and devices trusted, every device writable.
        refuse_on_doubt(ws, REMOVE)
        plan, going = _plan_removal(ws, refs)  # again, under the lock: nothing changes now
        if plan.labels and not force:
            raise UserError(
                f"{', '.join(plan.refs)} carries labels ({', '.join(plan.labels)}): move them "
                "first, or remove anyway with --force"
            )
        removed: list[str] = []
        freed = deleted = 0

        def done() -> str:
            gone = ", ".join(removed) or "nothing"
            return (f"removing {gone} and deleting {deleted} of {len(plan.freed)} unused chunks"
                    + ("; 'gc' deletes the rest once the device is writable" if removed
                       else ""))  # fmt: skip

        with reporting("removal", done):
            for manifest in going:
                ws.repo.remove_version(manifest)
                release_pin(ws.repo, manifest.model, manifest.seq)  # its hot copies go at gc
                removed.append(manifest.ref)
                ws.catalog.remove_version(manifest_key(manifest.model, manifest.seq),
                                          manifest.model)  # fmt: skip
            crash_point("after-removal-catalog")
            ctx.unit = "chunk"  # what the front's rate counts from here
            for n, (cid, size) in enumerate(plan.freed):  # not cancellable: leave no garbage
                ws.repo.chunks.delete(cid)
                deleted += 1
                freed += size
                ctx.report(n + 1, len(plan.freed), cid[:12])
                crash_point("removal-chunk-deleted")
            ws.repo.chunks.flush()
    models = frozenset(m.model for m in going)
    return RemovalResult(plan, freed, Changes(models, plan.refs, storage=bool(plan.freed)))
