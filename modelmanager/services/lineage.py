"""Lineage of a version (``show REF --related``) and the module diff (``diff A B --structure``).

Lineage reads no chunk data, and on a warm catalog no manifest either: the catalog indexes
every version's tensor digests and chunks (core/catalog/content.py), and two indexed joins
find every version sharing any. Without the index (a version the catalog could not list), it
falls back to reading manifests, a bounded number of them (:func:`scan_related`): the shown
model's own versions, then the versions of the other models closest in parameter count, up to
``limit`` manifests in all, and says so in :attr:`Lineage.note` when it stopped short.

The module diff reads only the tensors whose digest differs, one at a time from each version
(through :class:`services.reading.VersionReader`, chunks verified), and keeps two running sums
per tensor, so memory is one tensor of each version at a time.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from modelmanager.core.analysis import TensorChange, diff
from modelmanager.core.analysis.lineage import (
    Lineage,
    StructureDiff,
    TensorNorm,
    lineage,
    lineage_of,
    structure_diff,
)
from modelmanager.core.catalog import ModelRow, Sharing
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import FileRecord, Manifest, TensorRecord
from modelmanager.core.repo.names import parse_ref
from modelmanager.errors import FormatError, ModelManagerError
from modelmanager.services import Workspace
from modelmanager.services.reading import VersionReader
from modelmanager.services.tensors import FileTensors

#: Manifests a lineage query reads at most (a 7B model's manifest parses in ~5 ms).
MAX_SCAN = 500
#: Elements converted to float64 at a time when summing a tensor's norms.
_SLICE = 1 << 22


def candidates(ws: Workspace, m: Manifest) -> tuple[Iterator[tuple[str, int]], int]:
    """Every other version as (model, seq), the likeliest relatives first, and how many: the
    model's own versions (nearest number first), then other models' versions, the models
    closest in parameter count to ``m`` first (catalog figures: no manifest read)."""
    own = sorted((v.seq for v in ws.catalog.versions(m.model) if v.seq != m.seq),
                 key=lambda s: (abs(s - m.seq), s))  # fmt: skip
    target = max(m.parameters, 1)

    def distance(r: ModelRow) -> tuple[float, str]:
        return abs(math.log(max(r.parameters, 1) / target)), r.name

    others = sorted((r for r in ws.catalog.models() if r.name != m.model), key=distance)

    def pool() -> Iterator[tuple[str, int]]:
        yield from ((m.model, s) for s in own)
        for row in others:  # each model's versions asked of the catalog only when reached
            yield from ((row.name, v.seq) for v in ws.catalog.versions(row.name))

    return pool(), len(own) + sum(r.versions for r in others)


def _indexed(ws: Workspace, ref: str) -> Sharing | None:
    """What the catalog's index says ``ref`` shares (None when the catalog does not list the
    version ``ref`` names: then the manifests say why, or what it is)."""
    r = parse_ref(ref)
    ws.catalog.sync()  # warm: only the change record is read
    seq = r.seq
    if seq is None:
        rows = ws.catalog.versions(r.model)  # newest first
        found = [v.seq for v in rows if r.label is None or r.label in v.labels]
        if not found:
            return None
        seq = found[0]
    return ws.catalog.sharing(r.model, seq)


def related(ws: Workspace, ref: str, *, limit: int = MAX_SCAN) -> Lineage:
    """The versions sharing tensors or chunks with ``ref``: every version, from the catalog's
    index (no manifest read); from at most ``limit`` manifests when the catalog lacks it."""
    found = _indexed(ws, ref)
    if found is not None:
        return lineage_of(found)
    return scan_related(ws, ref, limit=limit)


def scan_related(ws: Workspace, ref: str, *, limit: int = MAX_SCAN) -> Lineage:
    """:func:`related` by reading manifests: at most ``limit`` of them, the likeliest first."""
    m = ws.repo.resolve(ref)
    pool, count = candidates(ws, m)
    skipped: list[str] = []

    def manifests() -> Iterator[Manifest]:
        for model, seq in itertools.islice(pool, limit):
            try:
                yield ws.repo.read_manifest(model, seq)
            except ModelManagerError:
                skipped.append(f"{model}@{seq}")  # removed meanwhile, or unreadable

    result = lineage(m, manifests(), candidates=count)
    notes = []
    if count > limit:
        notes.append(f"read {limit} of {count} other versions (the model's own, then the "
                     "models closest in parameter count)")  # fmt: skip
    if skipped:
        notes.append(f"{len(skipped)} could not be read ({', '.join(skipped[:3])})")
    return Lineage(result.ref, result.tensor_bytes, result.logical_bytes, result.related,
                   result.scanned + len(skipped), count, "; ".join(notes))  # fmt: skip


def _files_of(m: Manifest) -> dict[int, FileRecord]:
    return {id(t): f for f in m.files for t in f.tensors}


class _Arrays:
    """Tensors of one version as arrays, one file reader per file (made on first use)."""

    def __init__(self, reader: VersionReader, m: Manifest) -> None:
        self.reader, self.file_of = reader, _files_of(m)
        self.files: dict[str, FileTensors] = {}

    def array(self, t: TensorRecord) -> np.ndarray[Any, Any]:
        f = self.file_of[id(t)]
        ft = self.files.get(f.path)
        if ft is None:
            ft = self.files[f.path] = FileTensors(f, functools.partial(self.reader.read, f))
        return ft.array(t)


def _numeric(dtype: np.dtype[Any]) -> bool:
    """Real numbers we can widen to float64 (ml_dtypes' bf16 and fp8 are numpy kind 'V')."""
    return dtype.kind in "fiub" or dtype.name in ("bfloat16", "float8_e4m3fn", "float8_e5m2")


def _norms(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> tuple[float, float]:
    """(||b - a||, ||a||) in float64, a slice of elements at a time."""
    fa, fb = a.reshape(-1), b.reshape(-1)
    diff_sq = base_sq = 0.0
    for at in range(0, fa.size, _SLICE):
        x = fa[at : at + _SLICE].astype(np.float64)
        y = fb[at : at + _SLICE].astype(np.float64)
        diff_sq += float(np.dot(y - x, y - x))
        base_sq += float(np.dot(x, x))
    return math.sqrt(diff_sq), math.sqrt(base_sq)


def _norm(t: TensorChange, old: _Arrays, new: _Arrays) -> tuple[TensorNorm, int]:
    """One changed tensor's relative change, and the bytes read for it."""
    assert t.old is not None
    assert t.new is not None
    if t.old.shape != t.new.shape:
        return TensorNorm(t.name, t.status, t.new.numel, None, why="shape changed"), 0
    try:
        a, b = old.array(t.old), new.array(t.new)
    except FormatError as e:  # quantized GGUF, compressed HDF5...: no array to compare
        return TensorNorm(t.name, t.status, t.new.numel, None, why=e.message), 0
    if not (_numeric(a.dtype) and _numeric(b.dtype)):  # complex, or bytes
        return TensorNorm(t.name, t.status, t.new.numel, None, why=f"dtype {t.new.dtype}"), 0
    d, n = _norms(a, b)
    rel = d / n if n else (0.0 if d == 0 else math.inf)
    return TensorNorm(t.name, t.status, t.new.numel, rel, d, n), t.old.nbytes + t.new.nbytes


def structure(ws: Workspace, a: str, b: str, ctx: JobContext | None = None) -> StructureDiff:
    """The modules that changed from ``a`` to ``b``, with each changed tensor's relative L2
    change read from the two versions (only tensors whose digest differs are read)."""
    ctx = ctx or JobContext()
    ma, mb = ws.repo.resolve(a), ws.repo.resolve(b)
    d = diff(ma, mb)
    changed = [t for t in d.tensors if t.status == "changed"]
    total = sum(t.old.nbytes + t.new.nbytes for t in changed if t.old and t.new)
    norms: dict[str, TensorNorm] = {}
    done = 0
    with VersionReader(ws, ma) as ra, VersionReader(ws, mb) as rb:
        old, new = _Arrays(ra, ma), _Arrays(rb, mb)
        for t in changed:
            ctx.check()
            norms[t.name], read = _norm(t, old, new)
            done += read
            ctx.report(done, total, t.name)
    return structure_diff(d, norms, done)
