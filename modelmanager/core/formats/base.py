"""What a format parser returns: the tensors of a file and the regions to cut chunks at."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

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
    #: Model facts the file states in its format's own terms (framework, architecture, ...),
    #: named as a version's metadata names them (text, or a whole number for a size); an
    #: import merges them, the first file first (see :func:`merge_facts`).
    facts: Mapping[str, str | int] = field(default_factory=dict)
    #: True when the file names the model that loads the others (a folder's config.json, its
    #: model card): its facts replace the weight files' instead of only filling gaps.
    facts_win: bool = False

    def chunk_regions(self) -> list[tuple[int, int]]:
        """Every byte range chunks should be cut around: headers plus tensors (or storages)."""
        if not self.tensor_regions:
            return list(self.regions)
        return [*self.regions, *((t.start, t.end) for t in self.tensors)]


def merge_facts(indexes: Iterable[FileIndex]) -> dict[str, str | int]:
    """The facts a version's files state together, in file order: a weight file's fill only
    what no earlier file stated, a file that names the model (``facts_win``) replaces them."""
    out: dict[str, str | int] = {}
    for index in indexes:
        if index.facts_win:
            out.update(index.facts)
        else:
            for key, value in index.facts.items():
                out.setdefault(key, value)
    return out


#: Characters one metadata value of a file keeps (longer values are cut by the sandbox).
MAX_META_VALUE = 4096


def fitted(items: list[Any], total: int, limit: int = MAX_META_VALUE, **extra: Any) -> str:
    """``{**extra, "total": total, "items": items}`` as compact JSON of at most ``limit``
    characters: the last items are left out until it fits (``total`` still counts them), so a
    summary stored as a metadata value is never cut into invalid JSON."""
    keep = len(items)
    while True:
        text = json.dumps({**extra, "total": total, "items": items[:keep]}, ensure_ascii=False,
                          separators=(",", ":"))  # fmt: skip
        if len(text) <= limit or keep == 0:
            return text
        keep = min(keep - 1, keep * limit // len(text))


#: Members one zip may hold: torch.save writes one per storage plus a few records, np.savez
#: one per array, so MAX_TENSORS with room to spare. zipfile builds ~500 bytes of objects per
#: member before any check of ours: a million tiny members cost ~500 MB.
MAX_ZIP_MEMBERS = 131_072
#: Bytes of the central directory zipfile reads whole (names, extra fields and comments).
MAX_ZIP_DIRECTORY = 32 << 20
_CD_RECORD = 46  # fixed part of one central directory record


def check_zip_directory(f: BinaryIO, path: Path) -> None:
    """Refuse a zip whose central directory is over MAX_ZIP_DIRECTORY bytes or holds over
    MAX_ZIP_MEMBERS records, before zipfile parses it.

    The end record (zip64 included) is found by zipfile's own ``_EndRecData`` so both read
    the same directory; the records are counted by walking their lengths, as zipfile does,
    since zipfile ignores the count the end record declares.
    """
    try:
        end = zipfile._EndRecData(f)  # type: ignore[attr-defined]
    except (OSError, zipfile.BadZipFile, struct.error) as e:
        raise FormatError(f"not a readable zip archive ({e})", path=path) from None
    if not end:
        return  # zipfile finds no end record either and refuses the file
    declared, length = int(end[zipfile._ECD_ENTRIES_TOTAL]), int(end[zipfile._ECD_SIZE])  # type: ignore[attr-defined]
    if declared > MAX_ZIP_MEMBERS:
        raise FormatError(f"the zip declares {declared} members, over the limit of "
                          f"{MAX_ZIP_MEMBERS}", path=path)  # fmt: skip
    if length > MAX_ZIP_DIRECTORY:
        raise FormatError(f"the zip's central directory of {length} bytes is over the limit of "
                          f"{MAX_ZIP_DIRECTORY}", path=path)  # fmt: skip
    zip64 = end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64  # type: ignore[attr-defined]
    start = int(end[zipfile._ECD_LOCATION]) - length - (76 if zip64 else 0)  # type: ignore[attr-defined]
    if start < 0:
        return  # zipfile refuses it ("Bad offset for central directory")
    f.seek(start)
    directory = f.read(length)
    pos = count = 0
    while pos + _CD_RECORD <= len(directory) and count <= MAX_ZIP_MEMBERS:
        name, extra, comment = struct.unpack_from("<HHH", directory, pos + 28)
        pos += _CD_RECORD + name + extra + comment
        count += 1
    if count > MAX_ZIP_MEMBERS:
        raise FormatError(f"the zip's central directory holds over {MAX_ZIP_MEMBERS} members "
                          f"(the end record declares {declared})", path=path)  # fmt: skip


def open_zip(f: BinaryIO, path: Path) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """A zip archive and its members; FormatError naming the file when it is not readable
    or its central directory is over the limits (checked before zipfile reads it)."""
    check_zip_directory(f, path)
    try:
        archive = zipfile.ZipFile(f)
        return archive, archive.infolist()
    except UnicodeDecodeError:
        raise FormatError("a zip member name is flagged UTF-8 but is not valid UTF-8",
                          path=path) from None  # fmt: skip
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as e:
        raise FormatError(f"not a readable zip archive ({e})", path=path) from None


#: Compression methods a member may use: stored and deflate (zipfile's others are refused).
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ENCRYPTED = 0x1 | 0x40  # traditional and strong encryption flags


@dataclass(frozen=True)
class ZipMember:
    """A zip member checked against its local header: where its stored bytes lie."""

    info: zipfile.ZipInfo
    start: int
    end: int


def zip_member_data_offset(f: BinaryIO, info: zipfile.ZipInfo, path: Path) -> int:
    """Where a zip member's (stored or compressed) bytes start in the file.

    The local header's extra field may differ from the central directory's, so it is read;
    its name and compression method must match the central directory's.
    """
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise FormatError(f"zip member {info.filename!r} has a bad local header", path=path)
    (method,) = struct.unpack_from("<H", local, 8)
    name_len, extra_len = struct.unpack_from("<HH", local, 26)
    name = f.read(name_len)
    if name != _raw_name(info) or method != info.compress_type:
        raise FormatError(f"zip member {info.filename!r} does not match its local header",
                          path=path)  # fmt: skip
    return int(info.header_offset) + 30 + int(name_len) + int(extra_len)


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name bytes as stored (zipfile decodes them as UTF-8 or cp437 by the flag)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def zip_members(
    f: BinaryIO, infos: list[zipfile.ZipInfo], size: int, path: Path
) -> list[ZipMember]:
    """Every member located and checked: not encrypted, stored or deflated, its local header
    matching, its bytes inside the file, and no two members sharing a header or bytes."""
    members = []
    for info in infos:
        shown = repr(info.filename[:120])
        if info.flag_bits & _ENCRYPTED:
            raise FormatError(f"zip member {shown} is encrypted", path=path)
        if info.compress_type not in ZIP_METHODS:
            raise FormatError(f"zip member {shown} uses compression method "
                              f"{info.compress_type}; only stored and deflate are read",
                              path=path)  # fmt: skip
        start = zip_member_data_offset(f, info, path)
        end = start + info.compress_size
        if end > size:
            raise FormatError(f"zip member {shown} runs past the end of the file", path=path)
        members.append(ZipMember(info, start, end))
    spans = sorted(members, key=lambda m: m.info.header_offset)
    for before, after in itertools.pairwise(spans):
        if after.info.header_offset < before.end:
            raise FormatError(f"zip members {before.info.filename[:120]!r} and "
                              f"{after.info.filename[:120]!r} share one local header or bytes",
                              path=path)  # fmt: skip
    return members


def read_member(archive: zipfile.ZipFile, member: ZipMember, limit: int, path: Path) -> bytes:
    """At most ``limit`` bytes of a member, inflated; read to its end, its CRC is checked."""
    shown = repr(member.info.filename[:120])
    try:
        with archive.open(member.info) as stream:
            return stream.read(limit)
    except zipfile.BadZipFile as e:
        cause = "fails its CRC check" if "CRC" in str(e) else f"is damaged ({e})"
        raise FormatError(f"zip member {shown} {cause}", path=path) from None
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zlib.error) as e:
        raise FormatError(f"zip member {shown} cannot be read ({e})", path=path) from None


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
        self._ranges((t.start for t in index.tensors), (t.end for t in index.tensors),
                     (t.dtype for t in index.tensors))  # fmt: skip

    @classmethod
    def of_ranges(
        cls, starts: Iterable[int], ends: Iterable[int], dtypes: Iterable[str]
    ) -> DtypeHints:
        """Hints from tensors given field by field (a manifest's columns: no record made)."""
        made = cls.__new__(cls)
        made._ranges(starts, ends, dtypes)
        return made

    def _ranges(self, starts: Iterable[int], ends: Iterable[int], dtypes: Iterable[str]) -> None:
        ordered = sorted(zip(starts, ends, dtypes, strict=True), key=lambda r: r[0])
        self.starts = [r[0] for r in ordered]
        self.ends = [r[1] for r in ordered]
        self.dtypes = [r[2] for r in ordered]

    def of(self, start: int, end: int) -> str | None:
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0 and self.ends[i] >= end > start:
            return self.dtypes[i]
        return None
