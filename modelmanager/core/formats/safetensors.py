"""Safetensors: an 8-byte little-endian header length, a JSON header, then the tensor data.

Validation follows the reference implementation and goes further where a hostile file could
hurt us: header size capped before reading, strict JSON, every offset and size checked, data
regions contiguous, non-overlapping and covering the data area exactly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

from modelmanager.core.formats.base import FileIndex, TensorEntry
from modelmanager.core.formats.jsonstrict import loads_strict
from modelmanager.errors import FormatError

SUFFIXES = (".safetensors",)
#: The reference implementation refuses headers over 100 MB; so do we.
MAX_HEADER = 100_000_000
MAX_RANK = 64
#: Bits per element of every dtype the format defines.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


def sniff(prefix: bytes, size: int) -> bool:
    """True when the first bytes look like a safetensors header (length, then '{')."""
    if len(prefix) < 9 or size < 10:
        return False
    n = int.from_bytes(prefix[:8], "little")
    return 2 <= n <= min(MAX_HEADER, size - 8) and prefix[8:9] == b"{"


def _tensor(name: str, info: Any, data_start: int, data_len: int, path: Path) -> TensorEntry:
    def bad(why: str) -> FormatError:
        return FormatError(f"tensor {name!r}: {why}", path=path)

    if not isinstance(info, dict):
        raise bad("entry is not a JSON object")
    missing = {"dtype", "shape", "data_offsets"} - info.keys()
    if missing:
        raise bad(f"entry lacks {', '.join(sorted(missing))}")
    extra = info.keys() - {"dtype", "shape", "data_offsets"}
    if extra:
        raise bad(f"entry has unknown fields {', '.join(sorted(extra))}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise bad(f"unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise bad(f"shape must be a list of at most {MAX_RANK} sizes")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"shape {shape} has a negative or non-integer size")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int for o in offsets)
    ):
        raise bad("data_offsets must be two integers")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise bad(f"data_offsets [{begin}, {end}] are out of order or negative")
    if end > data_len:
        raise bad(f"data_offsets [{begin}, {end}] run past the end of the data ({data_len} bytes)")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        raise bad(f"{dtype} of shape {shape} needs {bits / 8:g} bytes, offsets give {end - begin}")
    return TensorEntry(name, dtype, tuple(shape), data_start + begin, data_start + end)


def read_index(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """Parse and validate the header of an open safetensors file of ``size`` bytes."""
    if size < 8:
        raise FormatError(
            f"truncated: {size} bytes, but a safetensors file starts with an 8-byte header length",
            path=path,
        )
    n = int.from_bytes(f.read(8), "little")
    if n > MAX_HEADER:
        raise FormatError(f"header length {n} exceeds the {MAX_HEADER}-byte limit", path=path)
    if 8 + n > size:
        raise FormatError(
            f"header length {n} runs past the end of the file ({size} bytes): truncated?",
            path=path,
        )
    raw = f.read(n)
    if len(raw) != n:
        raise FormatError("file shrank while its header was read", path=path)
    try:
        header = loads_strict(raw)
    except ValueError as e:
        raise FormatError(f"header is {e}", path=path) from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object", path=path)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise FormatError("__metadata__ must map strings to strings", path=path)

    data_start = 8 + n
    data_len = size - data_start
    tensors = [_tensor(name, info, data_start, data_len, path) for name, info in header.items()]
    tensors.sort(key=lambda t: (t.start, t.end))
    pos = data_start
    for t in tensors:
        if t.start < pos:
            raise FormatError(f"tensor {t.name!r} overlaps the tensor before it", path=path)
        if t.start > pos:
            raise FormatError(
                f"bytes {pos - data_start}-{t.start - data_start} of the data belong to no tensor",
                path=path,
            )
        pos = t.end
    if pos != size:
        raise FormatError(
            f"{size - pos} bytes after the last tensor belong to no tensor", path=path
        )
    return FileIndex("safetensors", tuple(tensors), ((0, data_start),), metadata)
