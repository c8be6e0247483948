"""Lineage and module-level change: which versions share weights, and what a fine-tune moved.

Lineage reads no chunk data: a manifest already records each tensor's BLAKE3 digest and each
file's chunk ids, so two versions share a tensor exactly when a digest matches. The share is
of the version's tensor bytes (or of its file bytes, by chunk, when it has no tensors).

Wording thresholds (a share of the version's tensor bytes):

- 100 % with the same tensors: "same weights" (a copy, or only config/tokenizer changed);
- >= 90 %: "likely fine-tuned from it" (the older one is taken as the base): a fine-tune that
  freezes the backbone or retrains a head or a few layers leaves almost every byte unchanged;
- >= 50 %: "shares most weights: probably derived from it" (several layers retrained);
- below: "shares some weights" (typically the embeddings, or one common block).

A full fine-tune changes every tensor and shares nothing by digest: lineage cannot see it
(only a parent link or the card's base_model says so).

The catalog indexes every version's digests and chunks (core/catalog/content.py), so a lookup
reads no manifest: :func:`lineage_of` words what the index found with the same rule
(:func:`_relation`) as :func:`lineage` applies to manifests read one by one.

The module diff groups a :class:`VersionDiff`'s tensors by module (the name minus its last
dotted component) and takes per-tensor relative change norms ``||b - a|| / ||a||`` computed
by the caller (services/lineage.py reads only the changed tensors).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelmanager.core.analysis import VersionDiff
from modelmanager.core.catalog.content import Sharing
from modelmanager.core.repo.manifest import Manifest

#: Shares at or above these fractions get the stronger wording (see the module docstring).
SAME, FINE_TUNED, DERIVED = 1.0, 0.90, 0.50


@dataclass(frozen=True)
class Footprint:
    """What a version is made of, by content: tensor digest -> bytes of the version's tensors
    with that digest (and how many), chunk id -> bytes."""

    ref: str
    created: str
    tensors: dict[str, int]
    counts: dict[str, int]
    chunks: dict[str, int]

    @property
    def tensor_bytes(self) -> int:
        return sum(self.tensors.values())

    @property
    def chunk_bytes(self) -> int:
        return sum(self.chunks.values())


def footprint(m: Manifest) -> Footprint:
    """The version's distinct tensor digests and chunk ids, each with its bytes."""
    tensors: dict[str, int] = {}
    counts: dict[str, int] = {}
    for _f, t in m.tensors:
        if t.digest and t.nbytes:  # two equal tensors (tied weights) both count
            tensors[t.digest] = tensors.get(t.digest, 0) + t.nbytes
            counts[t.digest] = counts.get(t.digest, 0) + 1
    chunks = {c.id: c.length for f in m.files for c in f.chunks}
    return Footprint(m.ref, m.created, tensors, counts, chunks)


def percent(share: float) -> str:
    """A share as '93 %'; with a decimal where rounding would say 100 % of a share below 1."""
    whole = f"{100 * share:.0f}"
    if whole == "100" and share < 1:
        return f"{min(100 * share, 99.9):.1f} %"
    return f"{whole} %"


@dataclass(frozen=True)
class Relation:
    """Another version sharing content with the shown one, and how much of the shown one."""

    ref: str
    shared_tensors: int
    shared_tensor_bytes: int
    shared_chunk_bytes: int
    share: float  # of the shown version's tensor bytes (file bytes when it has no tensors)
    older: bool  # the other version was created first (so it is the likely base)
    parent: bool  # the other version is the shown one's recorded parent, or its child

    @property
    def wording(self) -> str:
        """The relation in words, per the thresholds of this module."""
        pct = f"shares {percent(self.share)} of its bytes with {self.ref}"
        if self.share >= SAME:
            return f"{pct}: same weights"
        if self.share >= FINE_TUNED:
            who = "likely fine-tuned from it" if self.older else "likely fine-tuned from this one"
            return f"{pct}: {who}"
        if self.share >= DERIVED:
            return f"{pct}: shares most weights, probably derived"
        return f"{pct}: shares some weights"

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "share": round(self.share, 6),
                "shared_tensors": self.shared_tensors,
                "shared_tensor_bytes": self.shared_tensor_bytes,
                "shared_chunk_bytes": self.shared_chunk_bytes, "older": self.older,
                "parent": self.parent, "wording": self.wording}  # fmt: skip


@dataclass(frozen=True)
class Lineage:
    """The versions sharing content with ``ref``, largest share first, and how far we looked."""

    ref: str
    tensor_bytes: int
    logical_bytes: int
    related: tuple[Relation, ...]
    scanned: int  # other versions compared (their manifests read, unless from_index)
    candidates: int  # other versions there are
    note: str = ""  # why not every version was read, when not
    #: Compared through the catalog's digest index (every version, no manifest read).
    from_index: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "tensor_bytes": self.tensor_bytes,
                "logical_bytes": self.logical_bytes,
                "related": [r.to_json() for r in self.related], "scanned": self.scanned,
                "candidates": self.candidates, "note": self.note,
                "from_index": self.from_index}  # fmt: skip


def _relation(ref: str, count: int, tensor_bytes: int, chunk_bytes: int, mine: tuple[int, int],
              older: bool, parent: bool) -> Relation | None:  # fmt: skip
    """The relation to ``ref`` sharing ``count`` tensors (``tensor_bytes``) and ``chunk_bytes``
    of a version of ``mine`` = (tensor bytes, chunk bytes); None when it says nothing."""
    mine_tensors, mine_chunks = mine
    if not tensor_bytes and (mine_tensors or not chunk_bytes):
        return None  # a shared file header or tokenizer alone says nothing about the weights
    if mine_tensors:
        share = tensor_bytes / mine_tensors
    else:
        share = chunk_bytes / mine_chunks if mine_chunks else 0.0
    return Relation(ref, count, tensor_bytes, chunk_bytes, share, older, parent)


def relate(mine: Footprint, other: Footprint, *, parent: bool = False) -> Relation | None:
    """How much of ``mine`` ``other`` shares (None when nothing)."""
    digests = mine.tensors.keys() & other.tensors.keys()
    tensor_bytes = sum(mine.tensors[d] for d in digests)
    chunk_bytes = sum(mine.chunks[c] for c in mine.chunks.keys() & other.chunks.keys())
    count = sum(mine.counts[d] for d in digests)
    return _relation(other.ref, count, tensor_bytes, chunk_bytes,
                     (mine.tensor_bytes, mine.chunk_bytes), other.created < mine.created,
                     parent)  # fmt: skip


def _ordered(related: Iterable[Relation]) -> tuple[Relation, ...]:
    """Largest share first (then most chunk bytes, then by reference)."""
    return tuple(sorted(related, key=lambda r: (-r.share, -r.shared_chunk_bytes, r.ref)))


def lineage(m: Manifest, others: Iterable[Manifest], *, candidates: int, note: str = "") -> Lineage:
    """``m``'s relations to each of ``others`` that shares anything, largest share first."""
    mine = footprint(m)
    related, scanned = [], 0
    for o in others:
        if o.model == m.model and o.seq == m.seq:
            continue
        scanned += 1
        kin = o.model == m.model and (o.seq == m.parent or o.parent == m.seq)
        r = relate(mine, footprint(o), parent=kin)
        if r is not None:
            related.append(r)
    return Lineage(m.ref, mine.tensor_bytes, m.logical_bytes, _ordered(related), scanned,
                   candidates, note)  # fmt: skip


def lineage_of(s: Sharing) -> Lineage:
    """The lineage the catalog's index found (:meth:`Catalog.sharing`): the same relations
    :func:`lineage` finds reading every other version's manifest."""
    related = []
    for o in s.shared:
        kin = o.model == s.model and (o.seq == s.parent or o.parent == s.seq)
        r = _relation(f"{o.model}@{o.seq}", o.tensors, o.tensor_bytes, o.chunk_bytes,
                      (s.tensor_bytes, s.chunk_bytes), o.created < s.created, kin)  # fmt: skip
        if r is not None:
            related.append(r)
    return Lineage(f"{s.model}@{s.seq}", s.tensor_bytes, s.logical_bytes, _ordered(related),
                   s.others, s.others, from_index=True)  # fmt: skip


def module_of(name: str) -> str:
    """A tensor's module: its name minus the last dotted component ("" at the top level)."""
    return name.rpartition(".")[0]


def relative_text(value: float | None, why: str = "") -> str:
    """A relative change as people read it: '1.23 %' ('—' and the reason when there is none)."""
    if value is None:
        return f"— ({why})" if why else "—"
    if math.isinf(value):
        return "∞ (was all zeros)"
    return f"{100 * value:.3g} %"


@dataclass(frozen=True)
class TensorNorm:
    """One changed tensor's relative change ``||b - a|| / ||a||`` (None: not computable)."""

    name: str
    status: str  # added | removed | changed
    parameters: int
    relative: float | None
    diff_norm: float | None = None  # ||b - a||
    base_norm: float | None = None  # ||a||
    why: str = ""  # why there is no norm (shape changed, quantized, added...)


@dataclass(frozen=True)
class ModuleChange:
    """A module with changed tensors: how many parameters changed and by how much."""

    module: str
    tensors: tuple[TensorNorm, ...]

    @property
    def parameters(self) -> int:
        return sum(t.parameters for t in self.tensors)

    @property
    def status(self) -> str:
        kinds = {t.status for t in self.tensors}
        return kinds.pop() if len(kinds) == 1 else "changed"

    @property
    def relative(self) -> float | None:
        """The module's relative change: sqrt(sum ||b-a||^2) / sqrt(sum ||a||^2) over its
        changed tensors (None when any has no norm)."""
        if any(t.diff_norm is None or t.base_norm is None for t in self.tensors):
            return None
        num = math.sqrt(sum((t.diff_norm or 0.0) ** 2 for t in self.tensors))
        den = math.sqrt(sum((t.base_norm or 0.0) ** 2 for t in self.tensors))
        return num / den if den else (0.0 if num == 0 else math.inf)

    def to_json(self) -> dict[str, Any]:
        rel = self.relative
        return {"module": self.module, "status": self.status, "parameters": self.parameters,
                "relative_change": None if rel is None or math.isinf(rel) else rel,
                "tensors": [{"name": t.name, "status": t.status, "parameters": t.parameters,
                             "relative_change": t.relative, "why": t.why}
                            for t in self.tensors]}  # fmt: skip


@dataclass(frozen=True)
class StructureDiff:
    """``diff A B --structure``: the modules that changed from ``a`` to ``b``."""

    a: str
    b: str
    modules: tuple[ModuleChange, ...]
    unchanged_tensors: int
    bytes_read: int  # tensor bytes read from both versions (only the changed tensors)

    @property
    def parameters(self) -> int:
        return sum(m.parameters for m in self.modules)

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "unchanged_tensors": self.unchanged_tensors,
                "changed_parameters": self.parameters, "bytes_read": self.bytes_read,
                "modules": [m.to_json() for m in self.modules]}  # fmt: skip


def structure_diff(
    d: VersionDiff, norms: Mapping[str, TensorNorm], bytes_read: int
) -> StructureDiff:
    """Group ``d``'s changed tensors by module, with the norms found for them (by name)."""
    grouped: dict[str, list[TensorNorm]] = {}
    for t in d.tensors:
        rec = t.new or t.old
        numel = rec.numel if rec is not None else 0
        norm = norms.get(t.name) or TensorNorm(t.name, t.status, numel, None, why=t.status)
        grouped.setdefault(module_of(rec.name if rec else t.name), []).append(norm)
    modules = tuple(ModuleChange(k, tuple(v)) for k, v in sorted(grouped.items()))
    return StructureDiff(d.a, d.b, modules, d.unchanged_tensors, bytes_read)
