"""What a format parser returns: the tensors of a file and the regions to cut chunks at."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TensorEntry:
    """One tensor: its name, dtype (format's own spelling), shape and byte range in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class FileIndex:
    """A parsed file: format name, tensors, extra regions (headers) and file-level metadata."""

    format: str
    tensors: tuple[TensorEntry, ...] = ()
    regions: tuple[tuple[int, int], ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    def chunk_regions(self) -> list[tuple[int, int]]:
        """Every byte range chunks should be cut around: headers plus tensors."""
        return [*self.regions, *((t.start, t.end) for t in self.tensors)]


GENERIC = FileIndex("generic")
