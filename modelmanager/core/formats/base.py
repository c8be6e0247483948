"""What a format parser returns: the tensors of a file and the regions to cut chunks at."""

from __future__ import annotations

import bisect
import math
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from modelmanager.errors import FormatError


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
    #: False where tensors may overlap (views of one storage): chunks follow ``regions`` only.
    tensor_regions: bool = True

    def chunk_regions(self) -> list[tuple[int, int]]:
        """Every byte range chunks should be cut around: headers plus tensors (or storages)."""
        if not self.tensor_regions:
            return list(self.regions)
        return [*self.regions, *((t.start, t.end) for t in self.tensors)]


def open_zip(f: BinaryIO, path: Path) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """A zip archive and its members; FormatError naming the file when it is not readable."""
    try:
        archive = zipfile.ZipFile(f)
        return archive, archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise FormatError(f"not a readable zip archive ({e})", path=path) from None


def zip_member_data_offset(f: BinaryIO, info: zipfile.ZipInfo, path: Path) -> int:
    """Where a zip member's (stored or compressed) bytes start in the file.

    The local header's extra field may differ from the central directory's, so it is read.
    """
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise FormatError(f"zip member {info.filename!r} has a bad local header", path=path)
    name_len, extra_len = struct.unpack_from("<HH", local, 26)
    return int(info.header_offset) + 30 + int(name_len) + int(extra_len)


class RefusedContent(FormatError):
    """Content that asks to run code (a pickle naming a callable): refused whatever its name."""


class NotThisFormat(Exception):
    """A parser's signal that the content is not its format at all (store it generically)."""


GENERIC = FileIndex("generic")


class DtypeHints:
    """The dtype of the tensor a byte range lies entirely in (None for headers and groups).

    Codecs use it to pick a dtype-aware encoding for a chunk.
    """

    def __init__(self, index: FileIndex) -> None:
        self.tensors = sorted(index.tensors, key=lambda t: t.start)
        self.starts = [t.start for t in self.tensors]

    def of(self, start: int, end: int) -> str | None:
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0 and self.tensors[i].end >= end > start:
            return self.tensors[i].dtype
        return None
