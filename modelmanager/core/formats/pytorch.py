"""PyTorch checkpoints (.pt, .pth, .bin, .ckpt), read without torch and without running code.

Both layouts torch.save writes are understood:
- zip (torch >= 1.6): ``<prefix>/data.pkl`` plus one stored (uncompressed) zip entry per
  storage, ``<prefix>/data/<key>``;
- legacy: consecutive pickles (magic number, protocol, system info, the object, the storage
  keys), then each storage's raw bytes after an 8-byte element count.

The pickles are read by the restricted, bounded unpickler of :mod:`safe_pickle`: nothing a
file names is ever called. This module turns what it builds into a tensor index.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from modelmanager.core.formats.base import (
    FileIndex,
    NotThisFormat,
    TensorEntry,
    ZipMember,
    open_zip,
    read_member,
    zip_members,
)
from modelmanager.core.formats.rules import MAX_NAME, MAX_TENSORS
from modelmanager.core.formats.safe_pickle import (
    MAX_INT,
    MAX_PICKLE,
    STORAGE_TYPES,
    Budget,
    StorageRef,
    TensorRef,
    unpickle,
)  # fmt: skip
from modelmanager.core.text import clipped
from modelmanager.errors import FormatError

SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
MAX_DEPTH = 64
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: What any torch checkpoint says of its model (a version's metadata names).
FACTS = {"framework": "pytorch"}


def _part(key: Any) -> str | None:
    """A key as part of a tensor name: strings and small integers; None for anything else."""
    if type(key) is str:
        return key
    if type(key) is int and -MAX_INT < key < MAX_INT:
        return str(key)
    return None


def _walk(obj: Any, path: Path) -> list[tuple[str, TensorRef]]:
    """Every tensor in nested dicts, lists and tuples, named with dots ('state_dict.fc.weight').

    Only containers and tensors are visited, each container once; names are built only on the
    way to a tensor and bounded in length; the tensors found are capped.
    """
    found: list[tuple[str, TensorRef]] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [("", obj, 0)]
    while stack:
        prefix, value, depth = stack.pop()
        if isinstance(value, TensorRef):
            if len(found) >= MAX_TENSORS:
                raise FormatError(f"more than {MAX_TENSORS} tensors, over the limit", path=path)
            name = prefix or "tensor"
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise FormatError(f"tensor name {clipped(name)} is not encodable as UTF-8",
                                  path=path) from None  # fmt: skip
            found.append((name, value))
            continue
        if id(value) in seen:
            continue
        if depth > MAX_DEPTH:
            raise FormatError(f"objects nested more than {MAX_DEPTH} deep", path=path)
        seen.add(id(value))
        items: Iterator[tuple[Any, Any]] = (
            iter(value.items()) if isinstance(value, dict) else enumerate(value)
        )
        for key, child in items:
            if not isinstance(child, (TensorRef, dict, list, tuple)):
                continue
            part = _part(key)
            if part is None:
                kind = type(key).__name__
                raise FormatError(f"a tensor or container under a key of type {kind}: it "
                                  "cannot be named", path=path)  # fmt: skip
            if len(prefix) + len(part) >= MAX_NAME:
                raise FormatError(f"a tensor name is over {MAX_NAME} characters", path=path)
            stack.append((f"{prefix}.{part}" if prefix else part, child, depth + 1))
    found.sort(key=lambda item: item[0])
    return found


def _entries(
    tensors: list[tuple[str, TensorRef]], starts: dict[str, tuple[int, int]], path: Path,
    size: int,
) -> tuple[TensorEntry, ...]:  # fmt: skip
    """Each tensor's byte range in the file, every field checked (see ``_checked``)."""
    out = []
    names: set[str] = set()
    for name, t in tensors:
        if name in names:
            raise FormatError(f"tensor name '{clipped(name)}' appears twice", path=path)
        names.add(name)
        if t.storage.key not in starts:
            raise FormatError(f"tensor '{clipped(name)}' uses storage '{clipped(t.storage.key)}', "
                              "which is absent", path=path)  # fmt: skip
        base, nbytes = starts[t.storage.key]
        out.append(_checked(name, t, base, nbytes, size, path))
    return tuple(out)


def _checked(name: str, t: TensorRef, base: int, nbytes: int, size: int, path: Path) -> TensorEntry:
    """A tensor's entry, validated: known dtype with a positive item size, sizes >= 0, its bytes
    inside its storage and the file, and a contiguous tensor exactly numel * itemsize long."""
    shown = f"tensor '{clipped(name)}'"
    if t.storage.stype not in STORAGE_TYPES:
        raise FormatError(f"{shown} has an unknown storage type", path=path)
    dtype, itemsize = STORAGE_TYPES[t.storage.stype]
    shape, stride, offset = t.shape, t.stride, t.offset
    if not (
        type(shape) is tuple
        and type(stride) is tuple
        and len(shape) == len(stride)
        and all(type(d) is int and 0 <= d < MAX_INT for d in (*shape, *stride, offset))
    ):
        raise FormatError(f"{shown} has a negative size, stride or offset", path=path)  # fmt: skip
    numel = math.prod(shape)
    span = 0 if numel == 0 else 1 + sum((d - 1) * s for d, s in zip(shape, stride, strict=True))
    start = base + offset * itemsize
    end = start + span * itemsize
    if not 0 <= base <= start <= end <= base + nbytes <= size:
        raise FormatError(f"{shown} runs past the end of its storage", path=path)
    contiguous = all(
        s == math.prod(shape[k + 1 :]) for k, (d, s) in enumerate(zip(shape, stride, strict=True))
        if d > 1
    )  # fmt: skip
    if contiguous and end - start != numel * itemsize:
        raise FormatError(f"{shown} needs {numel * itemsize} bytes but spans {end - start}",
                          path=path)  # fmt: skip
    return TensorEntry(name, dtype, shape, start, end)


def _check_member_name(name: str, path: Path) -> None:
    if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
        raise FormatError(f"zip member name {name!r} points outside the archive", path=path)


def _pickle_bytes(archive: zipfile.ZipFile, member: ZipMember, path: Path) -> bytes:
    """data.pkl, inflated and CRC-checked, refused above MAX_PICKLE whatever its header says."""
    if member.info.file_size > MAX_PICKLE:
        raise FormatError(f"data.pkl is {member.info.file_size} bytes, over the limit of "
                          f"{MAX_PICKLE}", path=path)  # fmt: skip
    data = read_member(archive, member, MAX_PICKLE + 1, path)
    if len(data) > MAX_PICKLE:
        raise FormatError(f"data.pkl inflates past {MAX_PICKLE} bytes, over the limit", path=path)
    return data


def read_zip(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """A torch.save zip: data.pkl unpickled by the restricted unpickler, storages located.

    Storage members are not read: their bytes are stored as they are, so a storage whose CRC
    does not match comes back byte for byte as it was (torch decides what it means). data.pkl
    is read to its end and refused on a bad CRC.
    """
    pickled, starts, regions = _zip_layout(f, size, path)
    storages: dict[str, StorageRef] = {}
    obj = unpickle(io.BytesIO(pickled), path, storages, Budget())
    del pickled
    for key, ref in storages.items():
        if key in starts and starts[key][1] < ref.numel * ref.itemsize:
            raise FormatError(
                f"storage '{clipped(key)}' is shorter than the pickle says", path=path
            )
    tensors = _entries(_walk(obj, path), starts, path, size)
    return FileIndex(
        "pytorch", tensors, tuple(sorted(regions)), {}, tensor_regions=False, facts=dict(FACTS)
    )


def _zip_layout(
    f: BinaryIO, size: int, path: Path
) -> tuple[bytes, dict[str, tuple[int, int]], list[tuple[int, int]]]:
    """data.pkl's bytes, each storage's (start, length) and the storages' byte ranges.

    Done apart from unpickling so zipfile's member records are freed before the pickle builds
    its objects (a 100,000-storage zip costs ~50 MB of them).
    """
    archive, infos = open_zip(f, path)
    for info in infos:
        _check_member_name(info.filename, path)
    pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if len(pickles) != 1:
        raise NotThisFormat("zip archive without a single <name>/data.pkl")
    members = zip_members(f, infos, size, path)
    prefix = pickles[0].filename[: -len("data.pkl")]
    byteorder = next((m for m in members if m.info.filename == prefix + "byteorder"), None)
    if byteorder is not None and read_member(archive, byteorder, 16, path).strip() not in (
        b"little",
        b"",
    ):
        raise FormatError("big-endian torch checkpoints are not supported", path=path)
    pickled = _pickle_bytes(archive, next(m for m in members if m.info is pickles[0]), path)
    starts: dict[str, tuple[int, int]] = {}
    regions = []
    for member in members:
        name = member.info.filename
        if name.startswith(prefix + "data/"):
            key = name[len(prefix + "data/") :]
            if member.info.compress_type != zipfile.ZIP_STORED:
                raise FormatError(f"storage '{clipped(key)}' is compressed; torch stores them raw",
                                  path=path)  # fmt: skip
            starts[key] = (member.start, member.end - member.start)
            regions.append((member.start, member.end))
    return pickled, starts, regions


def read_legacy(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """A legacy torch.save file: five pickles (read from a bounded window), then storages."""
    f.seek(0)
    window = f.read(MAX_PICKLE)
    data = io.BytesIO(window)
    storages: dict[str, StorageRef] = {}
    budget = Budget()

    def next_pickle() -> Any:
        try:
            return unpickle(data, path, storages, budget)
        except FormatError:
            if len(window) == MAX_PICKLE and data.tell() >= MAX_PICKLE:
                raise FormatError(f"the pickles run past {MAX_PICKLE} bytes, over the limit",
                                  path=path) from None  # fmt: skip
            raise

    magic = next_pickle()
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise FormatError("not a torch checkpoint (bad magic number)", path=path)
    _protocol = next_pickle()
    _sys_info = next_pickle()
    obj = next_pickle()
    keys = next_pickle()
    if not isinstance(keys, list) or not all(type(k) is str for k in keys):
        raise FormatError("legacy checkpoint has a malformed storage list", path=path)
    starts: dict[str, tuple[int, int]] = {}
    regions = []
    pos = data.tell()
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise FormatError(f"storage '{clipped(key)}' is listed but never used", path=path)
        if key in starts:
            raise FormatError(f"storage '{clipped(key)}' is listed twice", path=path)
        f.seek(pos)
        head = f.read(8)
        if len(head) != 8:
            raise FormatError("truncated: a storage's size is missing", path=path)
        (numel,) = struct.unpack("<q", head)
        nbytes = numel * ref.itemsize
        if numel < 0 or pos + 8 + nbytes > size:
            raise FormatError(f"storage '{clipped(key)}' runs past the end of the file", path=path)
        starts[key] = (pos + 8, nbytes)
        regions.append((pos + 8, pos + 8 + nbytes))
        pos += 8 + nbytes
    tensors = _entries(_walk(obj, path), starts, path, size)
    return FileIndex(
        "pytorch", tensors, tuple(regions), {}, tensor_regions=False, facts=dict(FACTS)
    )


def sniff(prefix: bytes) -> str | None:
    """'zip' or 'legacy' when the first bytes look like a torch checkpoint, else None."""
    if prefix.startswith(b"PK\x03\x04"):
        return "zip"
    if prefix.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"):
        return "legacy"
    return None


def read_index(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """Index a torch checkpoint of either layout; FormatError for anything else."""
    f.seek(0)
    kind = sniff(f.read(16))
    f.seek(0)
    if kind == "zip":
        return read_zip(f, size, path)
    if kind == "legacy":
        return read_legacy(f, size, path)
    raise NotThisFormat("neither the zip nor the legacy torch layout")
