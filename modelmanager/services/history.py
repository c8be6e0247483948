"""Versions and labels: list, show, diff, move a label (rollback), remove a label."""

from __future__ import annotations

from dataclasses import dataclass

from modelmanager.core.analysis import VersionDiff, diff
from modelmanager.core.catalog import ModelRow, VersionRow
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import check_label, parse_ref
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.errors import ModelManagerError, NotFoundError
from modelmanager.services import Changes, Workspace


def list_models(ws: Workspace) -> list[ModelRow]:
    """Every model with its newest version's figures."""
    return ws.catalog.models()


def log(ws: Workspace, model: str) -> list[VersionRow]:
    """Versions of ``model``, newest first; NotFoundError for an unknown model."""
    ref = parse_ref(model)
    rows = ws.catalog.versions(ref.model)
    if not rows:
        raise NotFoundError(f"no model named {ref.model!r}")
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
        """(stored bytes, codec id) per tensor of ``manifest.tensors`` (shared chunks pro rata)."""
        out = []
        for f, t in self.manifest.tensors:
            stored, codec, pos = 0.0, -1, 0
            for c in f.chunks:
                lo, hi = max(pos, t.start), min(pos + c.length, t.end)
                if hi > lo:
                    stored += self.chunk_stored.get(c.id, 0) * (hi - lo) / c.length
                    codec = self.chunk_codec.get(c.id, -1) if codec == -1 else codec
                pos += c.length
            out.append((round(stored), codec))
        return out


def version_details(ws: Workspace, ref: str) -> VersionDetails:
    """Everything the GUI's Overview and Tensors tabs need about one version (reads chunks)."""
    manifest = ws.repo.resolve(ref)
    stored: dict[str, int] = {}
    codec: dict[str, int] = {}
    for cid in manifest.chunk_ids():
        stored[cid] = ws.repo.chunks.stored_size(cid) or 0
        try:
            codec[cid] = ws.repo.chunks.header(cid).codec_id
        except ModelManagerError:
            codec[cid] = -1
    return VersionDetails(manifest, ws.repo.read_labels(manifest.model), stored, codec)
