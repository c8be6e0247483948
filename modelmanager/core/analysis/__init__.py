"""Analyses over manifests that read no chunk data: version diffs (memory estimates later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmanager.core.repo.manifest import FileRecord, Manifest, TensorRecord


@dataclass(frozen=True)
class TensorChange:
    """A tensor that differs between two versions (``old`` or ``new`` is None when absent)."""

    name: str
    status: str  # "added" | "removed" | "changed"
    old: TensorRecord | None
    new: TensorRecord | None

    @property
    def byte_delta(self) -> int:
        return (self.new.nbytes if self.new else 0) - (self.old.nbytes if self.old else 0)


@dataclass(frozen=True)
class FileChange:
    """A file that differs between two versions (sizes are None when absent)."""

    path: str
    status: str
    old_size: int | None
    new_size: int | None


@dataclass(frozen=True)
class VersionDiff:
    """What changed from version ``a`` to version ``b``."""

    a: str
    b: str
    files: tuple[FileChange, ...]
    tensors: tuple[TensorChange, ...]
    unchanged_tensors: int
    logical_delta: int

    def count(self, status: str) -> int:
        return sum(1 for t in self.tensors if t.status == status)

    def to_json(self) -> dict[str, Any]:
        """``diff --json``: the two refs, the size change, and each changed file and tensor
        (``changed_files``/``changed_tensors``: ``files`` is a count in every document)."""
        return {
            "a": self.a, "b": self.b, "logical_delta": self.logical_delta,
            "unchanged_tensors": self.unchanged_tensors,
            "changed_files": [{"path": f.path, "status": f.status, "old_size": f.old_size,
                       "new_size": f.new_size} for f in self.files],
            "changed_tensors": [{"name": t.name, "status": t.status, "byte_delta": t.byte_delta,
                         "old": t.old and {"dtype": t.old.dtype, "shape": list(t.old.shape),
                                           "bytes": t.old.nbytes},
                         "new": t.new and {"dtype": t.new.dtype, "shape": list(t.new.shape),
                                           "bytes": t.new.nbytes}}
                        for t in self.tensors],
        }  # fmt: skip


def _tensor_map(m: Manifest) -> dict[str, TensorRecord]:
    """Tensors by name; a name found in several files is qualified as 'path:name'."""
    seen: dict[str, int] = {}
    for _f, t in m.tensors:
        seen[t.name] = seen.get(t.name, 0) + 1
    return {(t.name if seen[t.name] == 1 else f"{f.path}:{t.name}"): t for f, t in m.tensors}


def _file_key(f: FileRecord) -> tuple[int, tuple[str, ...]]:
    return f.size, tuple(c.id for c in f.chunks)


def diff(a: Manifest, b: Manifest) -> VersionDiff:
    """Compare two manifests by tensor digest and file chunks, reading no tensor data."""
    fa = {f.path: f for f in a.files}
    fb = {f.path: f for f in b.files}
    files = []
    for path in sorted(fa.keys() | fb.keys()):
        old, new = fa.get(path), fb.get(path)
        if old is None or new is None:
            status = "added" if old is None else "removed"
        elif _file_key(old) != _file_key(new):
            status = "changed"
        else:
            continue
        files.append(FileChange(path, status, old.size if old else None, new.size if new else None))
    ta, tb = _tensor_map(a), _tensor_map(b)
    tensors = []
    unchanged = 0
    for name in sorted(ta.keys() | tb.keys()):
        old_t, new_t = ta.get(name), tb.get(name)
        if old_t is None or new_t is None:
            tensors.append(
                TensorChange(name, "added" if old_t is None else "removed", old_t, new_t)
            )
        elif (old_t.dtype, old_t.shape, old_t.digest) != (new_t.dtype, new_t.shape, new_t.digest):
            tensors.append(TensorChange(name, "changed", old_t, new_t))
        else:
            unchanged += 1
    return VersionDiff(
        a.ref, b.ref, tuple(files), tuple(tensors), unchanged, b.logical_bytes - a.logical_bytes
    )
