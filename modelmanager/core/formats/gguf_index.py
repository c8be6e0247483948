"""GGUF files: tensors and scalar metadata, read in one bounded pass over the header.

The gguf package's GGUFReader builds several numpy objects per element of every metadata
array: a 256k-token vocabulary cost ~800 MB and a 32 MB file of 4 M empty strings ran out
of memory. This reader keeps only what the index needs (tensor records and at most
MAX_SHOWN scalar values), steps over arrays without building them, and checks every count
and length against the bytes left in the file before reading, so memory is O(tensors) and
an absurd value is refused with its number. Runs inside the sandbox child (sandbox.py).
"""

from __future__ import annotations

import codecs
import json
import math
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from modelmanager.core.formats.rules import MAX_TENSORS

#: Metadata entries one file may declare (real files hold tens; a vocabulary is one array).
MAX_KEYS = 65_536
#: Elements of one metadata array: a vocabulary is 32k-262k tokens (scores, types, merges).
MAX_ARRAY = 1 << 20
#: String elements over all arrays of a file: each is a step of the header walk.
MAX_STRINGS = 4 << 20
#: Bytes of a metadata key or tensor name (names are then checked as text by the parent).
MAX_KEY = 1 << 16
#: Dimensions of one tensor (ggml's GGML_MAX_DIMS).
MAX_DIMS = 4
#: Scalar metadata values kept for display, and the bytes of each string value read.
MAX_SHOWN = 1024
SHOWN_BYTES = 4 * 4096  # sandbox.MAX_META_CHARS characters of UTF-8
STRING, ARRAY = 8, 9
#: Fixed-size value types: struct code by GGUF value type.
SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_WINDOW = 1 << 20


class Refused(Exception):
    """A header value over a limit or past the end of the file: the message says which."""


class _Header:
    """A cursor over the file that refuses to read or skip past its end."""

    def __init__(self, f: BinaryIO, size: int, order: str) -> None:
        self.f, self.size, self.order, self.pos = f, size, order, 0

    def take(self, n: int, what: str) -> bytes:
        if n > self.size - self.pos:
            raise Refused(f"{what} of {n} bytes runs past the end of the file")
        data = self.f.read(n)
        if len(data) != n:
            raise Refused(f"the file ends inside {what}")
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise Refused(f"{what} of {n} bytes runs past the end of the file")
        self.pos += n
        self.f.seek(self.pos)

    def num(self, code: str, what: str) -> Any:
        return struct.unpack(self.order + code, self.take(struct.calcsize(code), what))[0]

    def count(self, what: str, limit: int, each: int) -> int:
        """A uint64 count, refused above ``limit`` or above what the bytes left could hold."""
        n = int(self.num("Q", what))
        if n > limit:
            raise Refused(f"{n} {what}, over the limit of {limit}")
        if n * each > self.size - self.pos:
            raise Refused(f"{n} {what} cannot fit in the {self.size - self.pos} bytes left")
        return n

    def text(self, what: str) -> bytes:
        n = int(self.num("Q", f"the length of {what}"))
        if n > MAX_KEY:
            raise Refused(f"{what} of {n} bytes, over the limit of {MAX_KEY}")
        return self.take(n, what)

    def skip_strings(self, n: int, strings: list[int]) -> None:
        """Step over ``n`` strings, reading their lengths a window at a time."""
        strings[0] += n
        if strings[0] > MAX_STRINGS:
            raise Refused(
                f"{strings[0]} strings in metadata arrays, over the limit of {MAX_STRINGS}"
            )
        fmt = self.order + "Q"
        buf, at = b"", 0
        for _ in range(n):
            if at + 8 > len(buf):
                self.f.seek(self.pos)
                buf, at = self.f.read(min(_WINDOW, self.size - self.pos)), 0
                if len(buf) < 8:
                    raise Refused("a metadata array runs past the end of the file")
            (length,) = struct.unpack_from(fmt, buf, at)
            if length > self.size - self.pos - 8:
                raise Refused(f"a string of {length} bytes runs past the end of the file")
            self.pos += 8 + length
            at += 8 + length
        self.f.seek(self.pos)


def _value(h: _Header, kind: int, key: str, strings: list[int]) -> Any:
    """A scalar or string value (strings cut to SHOWN_BYTES), or None for an array (skipped)
    or a string that is not UTF-8."""
    if kind in SCALARS:
        return h.num(SCALARS[kind], f"the value of {key!r}")
    if kind == STRING:
        n = int(h.num("Q", f"the length of {key!r}"))
        if n > h.size - h.pos:
            raise Refused(f"the value of {key!r} of {n} bytes runs past the end of the file")
        shown = h.take(min(n, SHOWN_BYTES), f"the value of {key!r}")
        h.skip(n - len(shown), f"the value of {key!r}")
        try:  # a value cut inside a character keeps the characters before it
            return codecs.getincrementaldecoder("utf-8")().decode(shown, final=n == len(shown))
        except UnicodeDecodeError:
            return None  # not shown, as before: the file's bytes are stored whole
    if kind != ARRAY:
        raise Refused(f"metadata {key!r} has unknown value type {kind}")
    item = int(h.num("I", f"the item type of {key!r}"))
    if item == STRING:
        h.skip_strings(h.count(f"elements in array {key!r}", MAX_ARRAY, 8), strings)
    elif item in SCALARS:
        each = struct.calcsize(SCALARS[item])
        h.skip(h.count(f"elements in array {key!r}", MAX_ARRAY, each) * each, key)
    else:
        raise Refused(f"metadata {key!r} is an array of type {item}, which GGUF readers refuse")
    return None


def _tensor(h: _Header, sizes: dict[Any, tuple[int, int]]) -> tuple[str, Any, list[int], int]:
    """One tensor record: name, ggml type, shape in ggml order, offset in the data section."""
    import gguf

    raw = h.text("a tensor name")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"tensor name {raw[:120]!r} is not valid UTF-8") from None
    n_dims = int(h.num("I", f"the dimensions of {name[:120]!r}"))
    if n_dims > MAX_DIMS:
        raise Refused(
            f"tensor {name[:120]!r} has {n_dims} dimensions, over the limit of {MAX_DIMS}"
        )
    dims = [int(h.num("Q", "a dimension")) for _ in range(n_dims)]
    code = int(h.num("I", "a tensor type"))
    try:
        kind = gguf.GGMLQuantizationType(code)
    except ValueError:
        raise Refused(f"tensor {name[:120]!r} has unknown ggml type {code}") from None
    if kind not in sizes:
        raise Refused(f"tensor {name[:120]!r} has ggml type {kind.name} of unknown size")
    return name, kind, dims, int(h.num("Q", "a tensor offset"))


def index(path: Path) -> dict[str, Any]:
    """The child's answer for a GGUF file: tensor records, scalar metadata and block sizes."""
    import gguf

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h = _Header(f, size, "<")
        if h.take(4, "the magic") != b"GGUF":
            raise Refused("not a GGUF file (bad magic)")
        version = h.num("I", "the version")
        if version & 0xFFFF == 0:  # written on a big-endian machine
            h.order, version = ">", struct.unpack(">I", struct.pack("<I", version))[0]
        if version not in (2, 3):
            raise Refused(f"GGUF version {version} is not read (2 and 3 are)")
        n_tensors = h.count("tensors", MAX_TENSORS, 8 + 4 + 4 + 8)
        n_keys = h.count("metadata entries", MAX_KEYS, 8 + 4 + 1)
        metadata: dict[str, str] = {}
        alignment, strings = 32, [0]
        for _ in range(n_keys):
            raw = h.text("a metadata key")
            try:
                key = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Refused(f"metadata key {raw[:120]!r} is not valid UTF-8") from None
            kind = int(h.num("I", f"the type of {key[:120]!r}"))
            value = _value(h, kind, key[:120], strings)
            if key == "general.alignment":
                if kind != 4 or value == 0 or value & (value - 1):
                    raise Refused(f"general.alignment {value!r} is not a power of two (uint32)")
                alignment = value
            if value is not None and len(metadata) < MAX_SHOWN:
                metadata[key] = str(value)
        sizes = gguf.GGML_QUANT_SIZES
        records = [_tensor(h, sizes) for _ in range(n_tensors)]
    data_start = h.pos + (-h.pos % alignment)
    tensors, blocks, seen = [], {}, set()
    for name, kind, dims, offset in records:
        if name in seen:
            raise Refused(f"tensor name {name[:120]!r} appears twice")
        seen.add(name)
        elements, nbytes = sizes[kind]
        blocks[kind.name] = f"{elements} elements in {nbytes} bytes"
        start = data_start + offset
        tensors.append(
            [name, kind.name, dims[::-1], start, start + math.prod(dims) * nbytes // elements]
        )
    metadata["gguf.block_sizes"] = json.dumps(blocks, sort_keys=True)
    return {"tensors": tensors, "metadata": metadata}


#: GGUF metadata keys that state model facts -> the names a version's metadata gives them.
FACT_KEYS = (("general.architecture", "architecture"), ("general.name", "name"),
             ("general.file_type", "gguf_file_type"))  # fmt: skip


def facts(metadata: dict[str, str]) -> dict[str, str]:
    """Model facts of a GGUF file's (checked) metadata; run in the parent, not the child."""
    out = {"framework": "gguf"}
    out.update((name, metadata[key]) for key, name in FACT_KEYS if key in metadata)
    return out
