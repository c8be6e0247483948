"""A stored tensor as a numpy array in its stored dtype and shape, for every indexed format.

The manifest records each tensor's dtype (the format's spelling), shape and byte range; most
formats keep a tensor as one plain C-order array there. What each format adds, read from the
file's own bytes through ``read`` (so a lazy reader fetches only the chunks that hold them):

- safetensors, .npy: plain (an .npy saved in Fortran order is reshaped in that order);
- .npz: a stored member is plain (its .npy header, just before the data, gives the order); a
  deflated member's range is its compressed bytes, inflated here;
- PyTorch: a tensor is a view of a storage: its strides come from data.pkl, read by the same
  restricted unpickler the index uses (nothing in the file is ever called), and a strided view
  is copied into a contiguous array;
- GGUF: the plain ggml types (F32, F16, BF16, F64, I8-I64) are arrays; a quantized type is a
  FormatError naming the tensor and its type;
- HDF5: a dataset is an array only where the file's own layout message says it is stored
  contiguously at that range (found in the bytes outside the datasets); chunked, compressed
  or compact datasets are a FormatError naming them;
- ONNX: an initializer whose bytes are ``raw_data`` (or packed float/double data) is an array;
  varint-encoded data and external data are a FormatError naming it.

bf16 and fp8 come back as ml_dtypes' types (a dependency: numpy has neither).
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelmanager.core.formats import npy, pytorch
from modelmanager.core.formats.base import open_zip
from modelmanager.core.formats.safe_pickle import Budget, StorageRef, unpickle
from modelmanager.core.repo.manifest import FileRecord, TensorRecord
from modelmanager.core.text import clipped
from modelmanager.errors import FormatError

Bytes = np.ndarray[Any, np.dtype[np.uint8]]
#: A file's bytes [start, end) as a uint8 array (from memory, or fetched from the chunks).
Read = Callable[[int, int], Bytes]

#: Our dtype spelling (safetensors', shared by every format's index) -> numpy type.
_NUMPY = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
    "I32": "<i4", "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8",
    "C64": "<c8", "C128": "<c16",
}  # fmt: skip
_ML_DTYPES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
#: ggml types that are plain arrays (every other one is a quantized block format).
GGUF_PLAIN = frozenset({"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"})
#: ONNX TensorProto fields whose payload is the array's little-endian bytes: raw_data (9)
#: for any type, packed float_data (4) for F32, packed double_data (10) for F64.
_ONNX_TAGS = {"": 0x4A, "F32": 0x22, "F64": 0x52}
#: An HDF5 data layout message (version 3 or 4) of a contiguous dataset: class 1, then its
#: address and size (8 bytes each, as h5py and Keras write them).
_H5_CONTIGUOUS = (b"\x03\x01", b"\x04\x01")


def numpy_dtype(name: str) -> np.dtype[Any] | None:
    """The numpy dtype of one of our dtype names (``F32``, ``BF16``, ``I16_BE``, ...); None
    when numpy cannot hold it."""
    big = name.endswith("_BE")
    base = name[:-3] if big else name
    if base in _NUMPY:
        dtype = np.dtype(_NUMPY[base])
        return dtype.newbyteorder(">") if big else dtype
    if base in _ML_DTYPES and not big:
        try:
            import ml_dtypes  # a dependency; imported only when a bf16/fp8 tensor is read
        except ImportError:
            return None
        return np.dtype(getattr(ml_dtypes, _ML_DTYPES[base]))  # type: ignore[no-any-return]
    return None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _ReadFile(io.RawIOBase):
    """A seekable read-only file over ``read`` (for zipfile and the unpickler)."""

    def __init__(self, read: Read, size: int) -> None:
        super().__init__()
        self._read, self._size, self._pos = read, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._size, self._pos + len(view))
        if end <= self._pos:
            return 0
        data = self._read(self._pos, end)
        view[: len(data)] = data.tobytes()
        self._pos = end
        return len(data)


class FileTensors:
    """The tensors of one file of a version as arrays, read through ``read``.

    What a format needs beyond the manifest (PyTorch strides, HDF5 layouts) is read once, the
    first time a tensor of the file asks for it.
    """

    def __init__(self, f: FileRecord, read: Read) -> None:
        self.file, self.read = f, read
        self.by_name = {t.name: t for t in f.tensors}
        self._strides: dict[str, tuple[int, ...]] | None = None
        self._h5: set[tuple[int, int]] | None = None

    def _error(self, t: TensorRecord, why: str) -> FormatError:
        return FormatError(f"tensor '{clipped(t.name)}' {why}", path=self.file.path)

    def array(self, t: TensorRecord) -> np.ndarray[Any, Any]:
        """Tensor ``t`` of this file as an array in its stored dtype and shape."""
        fmt = self.file.format
        if fmt == "safetensors":
            return self._plain(t)
        if fmt == "npy":
            return self._plain(t, "F" if self.file.metadata.get("fortran_order") == "true" else "C")
        if fmt == "npz":
            return self._npz(t)
        if fmt == "pytorch":
            return self._torch(t)
        if fmt == "gguf":
            if t.dtype not in GGUF_PLAIN:
                raise self._error(t, f"is of GGUF type {t.dtype}, a quantized block format: "
                                  "only F32, F16, BF16, F64 and I8-I64 load as arrays")  # fmt: skip
            return self._plain(t)
        if fmt == "hdf5":
            if t.numel and (t.start, t.nbytes) not in self._hdf5_contiguous():
                raise self._error(t, "is an HDF5 dataset not stored contiguously (chunked, "
                                  "compressed or compact): not loadable as an array")  # fmt: skip
            return self._plain(t)
        if fmt == "onnx":
            return self._onnx(t)
        raise self._error(t, f"is in a {fmt} file, which has no array layout")

    def _dtype(self, t: TensorRecord) -> np.dtype[Any]:
        dtype = numpy_dtype(t.dtype)
        if dtype is None:
            raise self._error(t, f"has dtype {t.dtype}, which numpy cannot hold")
        return dtype

    def _plain(self, t: TensorRecord, order: str = "C") -> np.ndarray[Any, Any]:
        """A contiguous array at the tensor's byte range."""
        dtype = self._dtype(t)
        if t.numel * dtype.itemsize != t.nbytes:
            raise self._error(t, f"spans {t.nbytes} bytes, not the {t.numel * dtype.itemsize} "
                              f"its shape {t.shape} of {t.dtype} needs")  # fmt: skip
        data = self.read(t.start, t.end)
        return data.view(dtype).reshape(t.shape, order=order)  # type: ignore[call-overload,no-any-return]

    def _npz(self, t: TensorRecord) -> np.ndarray[Any, Any]:
        """A stored member's array in place (its header just before it says the order), or a
        deflated member inflated (its range is the compressed member)."""
        where = Path(self.file.path)
        lo = max(0, t.start - 12 - npy.MAX_HEADER)
        head = self.read(lo, t.start).tobytes()
        at = head.rfind(npy.MAGIC)
        while at >= 0:
            try:
                offset, name, _size, shape, fortran = npy.parse_header(head[at:], where)
            except FormatError:  # not the header: look further back
                offset, name, shape, fortran = -1, "", (), False
            if lo + at + offset == t.start and name == t.dtype and shape == t.shape:
                return self._plain(t, "F" if fortran else "C")
            at = head.rfind(npy.MAGIC, 0, at)
        try:
            blob = zlib.decompressobj(-15).decompress(self.read(t.start, t.end).tobytes())
        except zlib.error as e:
            raise self._error(t, f"is neither a stored nor a deflated member ({e})") from None
        offset, _name, _size, shape, fortran = npy.parse_header(blob, where)
        dtype = self._dtype(t)
        if len(blob) - offset != t.numel * dtype.itemsize:
            raise self._error(t, "inflates to a different size than its shape needs")
        array = np.frombuffer(blob, dtype, t.numel, offset)
        out: np.ndarray[Any, Any] = array.reshape(shape, order="F" if fortran else "C")
        return np.array(out)  # a writable copy, as every other array returned

    def _torch(self, t: TensorRecord) -> np.ndarray[Any, Any]:
        strides = self._torch_strides().get(t.name)
        shape = t.shape
        contiguous = strides is None or all(
            s == math.prod(shape[k + 1 :])
            for k, (d, s) in enumerate(zip(shape, strides, strict=True)) if d > 1
        )  # fmt: skip
        if contiguous:
            return self._plain(t)
        assert strides is not None
        dtype = self._dtype(t)
        storage = self.read(t.start, t.end).view(dtype)
        view = np.lib.stride_tricks.as_strided(
            storage, shape, tuple(s * dtype.itemsize for s in strides), writeable=False
        )
        return np.ascontiguousarray(view)

    def _torch_strides(self) -> dict[str, tuple[int, ...]]:
        """Each tensor's strides, from data.pkl (zip) or the object pickle (legacy)."""
        if self._strides is None:
            where = Path(self.file.path)
            f = _ReadFile(self.read, self.file.size)
            storages: dict[str, StorageRef] = {}
            if pytorch.sniff(self.read(0, min(16, self.file.size)).tobytes()) == "zip":
                archive, infos = open_zip(f, where)  # type: ignore[arg-type]
                pkl = next(i for i in infos if i.filename.endswith("/data.pkl"))
                obj = unpickle(io.BytesIO(archive.read(pkl)), where, storages, Budget())
            else:
                budget = Budget()
                stream = io.BufferedReader(f)
                for _ in range(4):  # magic, protocol, system info, then the object
                    obj = unpickle(stream, where, storages, budget)
            self._strides = {name: ref.stride for name, ref in pytorch._walk(obj, where)}
        return self._strides

    def _hdf5_contiguous(self) -> set[tuple[int, int]]:
        """(address, size) of every contiguous layout message in the bytes between datasets."""
        if self._h5 is None:
            found: set[tuple[int, int]] = set()
            pos = 0
            for start, end in [*sorted((t.start, t.end) for t in self.file.tensors),
                               (self.file.size, self.file.size)]:  # fmt: skip
                if start > pos:
                    gap = self.read(pos, start).tobytes()
                    for tag in _H5_CONTIGUOUS:
                        at = gap.find(tag)
                        while 0 <= at <= len(gap) - 18:
                            found.add(struct.unpack_from("<QQ", gap, at + 2))
                            at = gap.find(tag, at + 1)
                pos = max(pos, end)
            self._h5 = found
        return self._h5

    def _onnx(self, t: TensorRecord) -> np.ndarray[Any, Any]:
        if t.numel and t.start == t.end:
            raise self._error(t, "is stored in an external data file: read that file instead")
        before = self.read(max(0, t.start - 11), t.start).tobytes()
        length = _varint(t.nbytes)
        tags = {_ONNX_TAGS[""], _ONNX_TAGS.get(t.dtype, _ONNX_TAGS[""])}
        if not any(before.endswith(bytes([tag]) + length) for tag in tags):
            raise self._error(t, "is stored as varints (typed ONNX data), not raw bytes: it "
                              "does not load as an array")  # fmt: skip
        return self._plain(t)
