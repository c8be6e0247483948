"""Versions and labels: list, show, diff, move a label (rollback), remove a label."""

from __future__ import annotations

from dataclasses import dataclass

from modelmanager.core.analysis import VersionDiff, diff
from modelmanager.core.catalog import ModelRow, VersionRow
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import check_label, parse_ref
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.errors import NotFoundError
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
