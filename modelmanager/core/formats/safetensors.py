"""Safetensors: an 8-byte little-endian header length, a JSON header, then the tensor data.

Validation follows the reference implementation and goes further where a hostile file could
hurt us: header size capped before reading, strict JSON, every offset and size checked, data
regions contiguous, non-overlapping and covering the data area exactly.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, BinaryIO

from modelmanager.core.formats.base import FileIndex, TensorEntry
from modelmanager.core.formats.jsonstrict import loads_strict
from modelmanager.core.formats.rules import MAX_TENSORS, escaped
from modelmanager.errors import FormatError

SUFFIXES = (".safetensors",)
#: The reference implementation refuses headers over 100 MB. We refuse over 16 MiB, and a
#: header whose text would take more than that in memory (issue 15: an import's memory stays
#: bounded): ample for the 100,000 tensors a file may hold (such a header is ~10 MB).
MAX_HEADER = 16 << 20
MAX_RANK = 64
#: Bits per element of every dtype the format defines.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
#: UTF-8 lead bytes of characters beyond U+FFFF (4 bytes each in a Python string) and of
#: characters beyond U+00FF (2 bytes each).
_ASTRAL = re.compile(rb"[\xf0-\xf4]")
_WIDE = re.compile(rb"[\xc4-\xef]")


def sniff(prefix: bytes, size: int) -> bool:
    """True when the first bytes look like a safetensors header (length, then '{')."""
    if len(prefix) < 9 or size < 10:
        return False
    n = int.from_bytes(prefix[:8], "little")
    return 2 <= n <= min(MAX_HEADER, size - 8) and prefix[8:9] == b"{"


#: A tensor entry as parsed: (dtype, shape, data_offsets), before it is checked.
_Info = tuple[Any, Any, Any]
_FIELDS = frozenset({"dtype", "shape", "data_offsets"})


def _compact(obj: dict[str, Any]) -> dict[str, Any] | _Info:
    """A tensor entry becomes a 3-tuple as soon as it is parsed (JSON has no tuples, so a tuple
    is always one): a header of 100,000s of tensors never holds a dict per tensor."""
    if obj.keys() == _FIELDS:
        return obj["dtype"], obj["shape"], obj["data_offsets"]
    return obj


def _tensor(name: str, info: Any, data_start: int, data_len: int, path: Path) -> TensorEntry:
    def bad(why: str) -> FormatError:
        return FormatError(f"tensor {escaped(name)}: {why}", path=path)

    if isinstance(info, dict):
        missing = _FIELDS - info.keys()
        if missing:
            raise bad(f"entry lacks {', '.join(sorted(missing))}")
        raise bad(f"entry has unknown fields {', '.join(sorted(info.keys() - _FIELDS))}")
    if not isinstance(info, tuple):
        raise bad("entry is not a JSON object")
    dtype, shape, offsets = info
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise bad(f"unknown dtype {escaped(dtype) if isinstance(dtype, str) else dtype!r}")
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


def _count_streaming(f: BinaryIO, n: int) -> int:
    """How many tensors the next ``n`` bytes (a header too big to parse) declare, read in
    blocks: the count a refusal names, at the cost of one pass and no memory."""
    key, tail, found = b'"data_offsets"', b"", 0
    while n > 0:
        block = f.read(min(n, 1 << 20))
        if not block:
            break
        n -= len(block)
        data = tail + block
        found += data.count(key)
        tail = data[-(len(key) - 1) :]  # a key cut in two is counted with the next block
    return found


def _header_text(raw: bytes, path: Path) -> str:
    """The header as text, once its size in memory and its tensor count are known to be bounded.

    Counted before parsing, so a header of a million tensors is refused in milliseconds. One
    character beyond U+FFFF makes Python hold every character in 4 bytes: limited as well.
    """
    declared = raw.count(b'"data_offsets"')
    if declared > MAX_TENSORS:
        raise FormatError(
            f"the header declares {declared} tensors, over the limit of {MAX_TENSORS} per file",
            path=path,
        )
    width = 4 if _ASTRAL.search(raw) else 2 if _WIDE.search(raw) else 1
    if len(raw) * width > MAX_HEADER:
        raise FormatError(
            f"header of {len(raw)} bytes holds characters that take {width} bytes each in "
            f"memory: over the {MAX_HEADER}-byte limit",
            path=path,
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"header is not UTF-8 text ({e.reason} at byte {e.start})",
                          path=path) from None  # fmt: skip


def read_index(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """Parse and validate the header of an open safetensors file of ``size`` bytes."""
    if size < 8:
        raise FormatError(
            f"truncated: {size} bytes, but a safetensors file starts with an 8-byte header length",
            path=path,
        )
    n = int.from_bytes(f.read(8), "little")
    if n > MAX_HEADER:
        declared = f" ({_count_streaming(f, n)} tensors declared)" if 8 + n <= size else ""
        raise FormatError(
            f"header length {n} exceeds the {MAX_HEADER}-byte limit{declared}", path=path
        )
    if 8 + n > size:
        raise FormatError(
            f"header length {n} runs past the end of the file ({size} bytes): truncated?",
            path=path,
        )
    raw = f.read(n)
    if len(raw) != n:
        raise FormatError("file shrank while its header was read", path=path)
    text = _header_text(raw, path)
    del raw
    try:
        header = loads_strict(text, each_object=_compact)
    except ValueError as e:
        raise FormatError(f"header is {e}", path=path) from None
    del text
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object", path=path)
    metadata = header.pop("__metadata__", None) or {}
    if isinstance(metadata, tuple):  # metadata that happens to have a tensor entry's keys
        metadata = dict(zip(("dtype", "shape", "data_offsets"), metadata, strict=True))
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise FormatError("__metadata__ must map strings to strings", path=path)

    data_start = 8 + n
    data_len = size - data_start
    tensors = []
    while header:
        name, info = header.popitem()  # entries leave the parsed header as they are checked
        tensors.append(_tensor(name, info, data_start, data_len, path))
    del header
    tensors.sort(key=lambda t: (t.start, t.end))
    pos = data_start
    for t in tensors:
        if t.start < pos:
            raise FormatError(f"tensor {escaped(t.name)} overlaps the tensor before it", path=path)
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
    return FileIndex("safetensors", tuple(tensors), ((0, data_start),), metadata,
                     facts=facts(metadata))  # fmt: skip


def facts(metadata: dict[str, str]) -> dict[str, str]:
    """A file written by torch's safetensors writer says ``format: pt``: a PyTorch model."""
    return {"framework": "pytorch"} if metadata.get("format") == "pt" else {}
