"""NumPy ``.npy`` arrays and ``.npz`` archives of them.

An .npy file is the magic ``\\x93NUMPY``, a version, a header length, a header that is a Python
dict literal (``descr``, ``fortran_order``, ``shape``), then the array's bytes. The header is
read with ``ast.literal_eval``, which evaluates literals only, never code, after its size is
capped; every failure becomes a FormatError. Object arrays (``descr`` 'O', i.e. pickles) are
refused. Big-endian dtypes keep a distinct name (``F32_BE``) so no codec mistakes their byte
order.

An .npz is a zip of .npy members. A stored member's array is a plain byte range of the file.
For a deflated member (``savez_compressed``) only its .npy header is inflated, with a bounded
output size, so a deflate bomb costs nothing; its tensor's byte range is then the member's
compressed bytes.
"""

from __future__ import annotations

import ast
import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from modelmanager.core.formats.base import (
    FileIndex,
    NotThisFormat,
    TensorEntry,
    open_zip,
    zip_members,
)
from modelmanager.errors import FormatError

MAGIC = b"\x93NUMPY"
MAX_HEADER = 65536
_KINDS = {"f": "F", "i": "I", "u": "U", "c": "C", "b": "BOOL"}


def _dtype(descr: Any, path: Path, where: str) -> tuple[str, int]:
    """(our dtype name, element size) for a simple .npy type string such as '<f4'."""
    if not isinstance(descr, str):
        raise FormatError(f"{where}structured dtypes are not supported", path=path)
    if len(descr) < 2 or descr[0] not in "<>|=" or not descr[2:].isdigit():
        if "O" in descr:
            raise FormatError(f"{where}object arrays hold pickles and are refused", path=path)
        raise FormatError(f"{where}unsupported dtype {descr!r}", path=path)
    order, kind, size = descr[0], descr[1], int(descr[2:])
    if kind == "O":
        raise FormatError(f"{where}object arrays hold pickles and are refused", path=path)
    if kind not in _KINDS and kind != "V":
        raise FormatError(f"{where}unsupported dtype {descr!r}", path=path)
    if not 1 <= size <= 64:
        raise FormatError(f"{where}unsupported element size in {descr!r}", path=path)
    name = "BOOL" if kind == "b" else f"V{size * 8}" if kind == "V" else f"{_KINDS[kind]}{size * 8}"
    if order == ">" and size > 1:
        name += "_BE"
    return name, size


def parse_header(
    blob: bytes, path: Path, where: str = ""
) -> tuple[int, str, int, tuple[int, ...], bool]:
    """(data offset, dtype, element size, shape, fortran order) from the first bytes of a .npy."""
    if len(blob) < 10 or blob[:6] != MAGIC:
        raise NotThisFormat("no .npy magic")
    major = blob[6]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", blob, 8)
        start = 10
    elif major in (2, 3):
        if len(blob) < 12:
            raise FormatError(f"{where}truncated .npy header", path=path)
        (hlen,) = struct.unpack_from("<I", blob, 8)
        start = 12
    else:
        raise FormatError(f"{where}unknown .npy version {major}", path=path)
    if hlen > MAX_HEADER:
        raise FormatError(f"{where}.npy header of {hlen} bytes is over the limit", path=path)
    if len(blob) < start + hlen:
        raise FormatError(f"{where}truncated .npy header", path=path)
    text = blob[start : start + hlen].decode("utf-8" if major == 3 else "latin-1", "replace")
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError) as e:
        raise FormatError(f"{where}.npy header is not a literal dict ({type(e).__name__})",
                          path=path) from None  # fmt: skip
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FormatError(f"{where}.npy header must have exactly descr, fortran_order, shape",
                          path=path)  # fmt: skip
    shape = header["shape"]
    if (
        not isinstance(shape, tuple)
        or len(shape) > 64
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise FormatError(f"{where}.npy shape {str(shape)[:60]} is not sizes >= 0", path=path)
    if not isinstance(header["fortran_order"], bool):
        raise FormatError(f"{where}.npy fortran_order must be True or False", path=path)
    dtype, itemsize = _dtype(header["descr"], path, where)
    return start + hlen, dtype, itemsize, shape, header["fortran_order"]


def read_npy(f: BinaryIO, size: int, path: Path) -> FileIndex:
    f.seek(0)
    blob = f.read(12 + MAX_HEADER)
    data_start, dtype, itemsize, shape, fortran = parse_header(blob, path)
    nbytes = math.prod(shape) * itemsize
    if data_start + nbytes != size:
        what = "truncated" if data_start + nbytes > size else "has bytes after the array"
        raise FormatError(f"{what}: shape {shape} of {dtype} needs {nbytes} bytes of data, "
                          f"the file has {size - data_start}", path=path)  # fmt: skip
    tensor = TensorEntry("array", dtype, shape, data_start, data_start + nbytes)
    meta = {"fortran_order": "true"} if fortran else {}
    return FileIndex("npy", (tensor,), ((0, data_start),), meta)


def read_npz(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """An .npz: each member's .npy header read (only the header inflated), members checked.

    Members are not read to their end, so their CRCs are not checked: their bytes are stored
    as they are and come back byte for byte.
    """
    _archive, infos = open_zip(f, path)
    if not infos or not all(i.filename.endswith(".npy") for i in infos):
        raise NotThisFormat("a zip that is not made of .npy members")
    tensors = []
    regions = []
    names: set[str] = set()
    for info in infos:
        name = info.filename[: -len(".npy")]
        where = f"member {info.filename[:120]!r}: "
        if name.startswith("/") or ".." in name.split("/") or "\\" in name or not name:
            raise FormatError(f"{where}name points outside the archive", path=path)
        if name in names:
            raise FormatError(f"{where}appears twice", path=path)
        names.add(name)
    for member in zip_members(f, infos, size, path):
        info, start, end = member.info, member.start, member.end
        name = info.filename[: -len(".npy")]
        where = f"member {info.filename[:120]!r}: "
        regions.append((start, end))
        f.seek(start)
        if info.compress_type == zipfile.ZIP_STORED:
            head = f.read(min(info.compress_size, 12 + MAX_HEADER))
        else:
            inflater = zlib.decompressobj(-15)
            try:
                head = inflater.decompress(
                    f.read(min(info.compress_size, 1 << 20)), 12 + MAX_HEADER
                )
            except zlib.error as e:
                raise FormatError(f"{where}damaged deflate data ({e})", path=path) from None
        offset, dtype, itemsize, shape, _fortran = parse_header(head, path, where)
        nbytes = math.prod(shape) * itemsize
        if offset + nbytes != info.file_size:
            raise FormatError(f"{where}shape {shape} of {dtype} needs {nbytes} bytes, the member "
                              f"holds {info.file_size - offset}", path=path)  # fmt: skip
        if info.compress_type == zipfile.ZIP_STORED:
            tensors.append(TensorEntry(name, dtype, shape, start + offset, end))
        else:
            tensors.append(TensorEntry(name, dtype, shape, start, end))
    tensors.sort(key=lambda t: t.start)
    return FileIndex("npz", tuple(tensors), tuple(sorted(regions)), {}, tensor_regions=False)


def sniff(prefix: bytes) -> bool:
    return prefix.startswith(MAGIC)
