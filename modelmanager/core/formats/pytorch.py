"""PyTorch checkpoints (.pt, .pth, .bin, .ckpt), read without torch and without running code.

Both layouts torch.save writes are understood:
- zip (torch >= 1.6): ``<prefix>/data.pkl`` plus one stored (uncompressed) zip entry per
  storage, ``<prefix>/data/<key>``;
- legacy: consecutive pickles (magic number, protocol, system info, the object, the storage
  keys), then each storage's raw bytes after an 8-byte element count.

The pickles are read by a restricted unpickler. ``find_class`` answers only from an allow-list,
and every answer is one of *our* stub constructors: a tensor record, a storage type, a plain
container. It never returns a real callable named by the file. Any other global (``os.system``,
``builtins.eval``, an unknown class) is refused with a FormatError that names it, before
anything it names could run. RELIABILITY.md rule 9: allow-list or nothing.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from modelmanager.core.formats.base import (
    FileIndex,
    NotThisFormat,
    RefusedContent,
    TensorEntry,
    open_zip,
    zip_member_data_offset,
)
from modelmanager.errors import FormatError

SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
#: A pickle larger than this is refused before it is read (a real one is kilobytes).
MAX_PICKLE = 256 * 1024 * 1024
MAX_DEPTH = 64
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

#: Storage type -> (our dtype spelling, element size).
STORAGE_TYPES = {
    "FloatStorage": ("F32", 4), "DoubleStorage": ("F64", 8), "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1), "ComplexFloatStorage": ("C64", 8),
    "ComplexDoubleStorage": ("C128", 16),
}  # fmt: skip


@dataclass(frozen=True)
class StorageType:
    """What ``torch.FloatStorage`` and its kind become: a dtype, nothing callable."""

    dtype: str
    itemsize: int


@dataclass(frozen=True)
class StorageRef:
    """A storage the pickle refers to by key (its bytes live elsewhere in the file)."""

    key: str
    dtype: str
    itemsize: int
    numel: int
    view_offset: int = 0  # legacy views: element offset into the root storage


@dataclass(frozen=True)
class TensorRef:
    """A tensor rebuilt as a record: storage, element offset, shape, strides."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise pickle.UnpicklingError("tensor without a storage")
    if not all(isinstance(v, int) for v in (offset, *size, *stride)):
        raise pickle.UnpicklingError("tensor with non-integer geometry")
    return TensorRef(storage, storage.view_offset + offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


def _size(*args: Any) -> tuple[Any, ...]:
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else args


def _device(*args: Any) -> str:
    return ":".join(str(a) for a in args)


_ALLOWED: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.Size": _size,
    "torch.device": _device,
    **{f"torch.{name}": StorageType(*info) for name, info in STORAGE_TYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only records and plain containers; refuses every other global by name."""

    def __init__(self, file: IO[bytes], path: Path, storages: dict[str, StorageRef]) -> None:
        super().__init__(file)
        self.path = path
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in _ALLOWED:
            return _ALLOWED[key]
        raise RefusedContent(
            f"refused to load: the pickle calls {key}, which is not a tensor or a plain "
            "container (no code from a checkpoint is ever run)",
            path=self.path,
        )

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(stype, StorageType) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError("malformed storage reference")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = StorageRef(key, stype.dtype, stype.itemsize, numel)
        if len(pid) > 5 and pid[5] is not None:  # legacy view: (view key, offset, size)
            _view_key, offset, _size = pid[5]
            return StorageRef(key, root.dtype, root.itemsize, root.numel, int(offset))
        return root


_PICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
    AttributeError, struct.error, RecursionError, MemoryError, OverflowError,
)  # fmt: skip


def _unpickle(data: IO[bytes], path: Path, storages: dict[str, StorageRef]) -> Any:
    try:
        return _RestrictedUnpickler(data, path, storages).load()
    except FormatError:
        raise
    except _PICKLE_ERRORS as e:
        raise FormatError(f"damaged pickle ({type(e).__name__}: {e})", path=path) from None


def _walk(obj: Any, path: Path) -> list[tuple[str, TensorRef]]:
    """Every tensor in nested dicts, lists and tuples, named with dots ('state_dict.fc.weight')."""
    found: list[tuple[str, TensorRef]] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [("", obj, 0)]
    while stack:
        prefix, value, depth = stack.pop()
        if isinstance(value, TensorRef):
            found.append((prefix or "tensor", value))
            continue
        if not isinstance(value, (dict, list, tuple)) or id(value) in seen:
            continue
        if depth > MAX_DEPTH:
            raise FormatError(f"objects nested more than {MAX_DEPTH} deep", path=path)
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            name = f"{prefix}.{key}" if prefix else str(key)
            stack.append((name, child, depth + 1))
    found.sort(key=lambda item: item[0])
    return found


def _entries(
    tensors: list[tuple[str, TensorRef]], starts: dict[str, tuple[int, int]], path: Path
) -> tuple[TensorEntry, ...]:
    out = []
    names: set[str] = set()
    for name, t in tensors:
        if name in names:
            raise FormatError(f"tensor name {name!r} appears twice", path=path)
        names.add(name)
        if t.storage.key not in starts:
            raise FormatError(f"tensor {name!r} uses storage {t.storage.key!r}, which is absent",
                              path=path)  # fmt: skip
        base, size = starts[t.storage.key]
        if any(d < 0 for d in t.shape) or any(s < 0 for s in t.stride) or t.offset < 0:
            raise FormatError(f"tensor {name!r} has a negative size, stride or offset", path=path)
        if len(t.shape) != len(t.stride):
            raise FormatError(f"tensor {name!r} has {len(t.shape)} sizes but {len(t.stride)} "
                              "strides", path=path)  # fmt: skip
        numel = math.prod(t.shape)
        geometry = zip(t.shape, t.stride, strict=True)
        span = 0 if numel == 0 else 1 + sum((d - 1) * s for d, s in geometry)
        start = base + t.offset * t.storage.itemsize
        end = start + span * t.storage.itemsize
        if end > base + size:
            raise FormatError(f"tensor {name!r} runs past the end of its storage", path=path)
        out.append(TensorEntry(name, t.storage.dtype, t.shape, start, end))
    return tuple(out)


def _check_member_name(name: str, path: Path) -> None:
    if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
        raise FormatError(f"zip member name {name!r} points outside the archive", path=path)


def read_zip(f: BinaryIO, size: int, path: Path) -> FileIndex:
    archive, infos = open_zip(f, path)
    for info in infos:
        _check_member_name(info.filename, path)
    pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if len(pickles) != 1:
        raise NotThisFormat("zip archive without a single <name>/data.pkl")
    prefix = pickles[0].filename[: -len("data.pkl")]
    if pickles[0].file_size > MAX_PICKLE:
        raise FormatError(f"data.pkl is {pickles[0].file_size} bytes, over the limit", path=path)
    byteorder = next((i for i in infos if i.filename == prefix + "byteorder"), None)
    if byteorder is not None and archive.read(byteorder).strip() not in (b"little", b""):
        raise FormatError("big-endian torch checkpoints are not supported", path=path)
    storages: dict[str, StorageRef] = {}
    with archive.open(pickles[0]) as pkl:
        data = pkl.read(MAX_PICKLE + 1)
    obj = _unpickle(io.BytesIO(data), path, storages)
    starts: dict[str, tuple[int, int]] = {}
    regions = []
    for info in infos:
        offset = zip_member_data_offset(f, info, path)
        end = offset + info.compress_size
        if end > size:
            raise FormatError(f"zip member {info.filename!r} runs past the end of the file",
                              path=path)  # fmt: skip
        if info.filename.startswith(prefix + "data/"):
            key = info.filename[len(prefix + "data/") :]
            if info.compress_type != zipfile.ZIP_STORED:
                raise FormatError(f"storage {key!r} is compressed; torch stores them raw",
                                  path=path)  # fmt: skip
            starts[key] = (offset, info.file_size)
            regions.append((offset, end))
    for key, ref in storages.items():
        if key in starts and starts[key][1] < ref.numel * ref.itemsize:
            raise FormatError(f"storage {key!r} is shorter than the pickle says", path=path)
    tensors = _entries(_walk(obj, path), starts, path)
    return FileIndex("pytorch", tensors, tuple(sorted(regions)), {}, tensor_regions=False)


def read_legacy(f: BinaryIO, size: int, path: Path) -> FileIndex:
    storages: dict[str, StorageRef] = {}
    if _unpickle(f, path, storages) != LEGACY_MAGIC:
        raise FormatError("not a torch checkpoint (bad magic number)", path=path)
    _protocol = _unpickle(f, path, storages)
    _sys_info = _unpickle(f, path, storages)
    obj = _unpickle(f, path, storages)
    keys = _unpickle(f, path, storages)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise FormatError("legacy checkpoint has a malformed storage list", path=path)
    starts: dict[str, tuple[int, int]] = {}
    regions = []
    pos = f.tell()
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise FormatError(f"storage {key!r} is listed but never used", path=path)
        f.seek(pos)
        head = f.read(8)
        if len(head) != 8:
            raise FormatError("truncated: a storage's size is missing", path=path)
        (numel,) = struct.unpack("<q", head)
        nbytes = numel * ref.itemsize
        if numel < 0 or pos + 8 + nbytes > size:
            raise FormatError(f"storage {key!r} runs past the end of the file", path=path)
        starts[key] = (pos + 8, nbytes)
        regions.append((pos + 8, pos + 8 + nbytes))
        pos += 8 + nbytes
    tensors = _entries(_walk(obj, path), starts, path)
    return FileIndex("pytorch", tensors, tuple(regions), {}, tensor_regions=False)


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
