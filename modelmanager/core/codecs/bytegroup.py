"""The byte-grouping codec for floating-point tensors (codec id 2).

Weights compress badly as a whole because every float mixes a skewed exponent with a
near-random mantissa. This codec separates them:

1. Each element is read as a little-endian unsigned word (on any host) and rotated left by one
   bit, moving the sign from the top to the bottom. The top byte of a bf16 or fp32 word is then
   exactly the exponent.
2. The words are split into byte planes (plane j holds byte j of every element).
3. Each plane is coded with whichever is smallest: raw; Huffman (zstd with match finding off,
   so only its literal entropy coder works); or, for a plane of at most 15 common values (an
   exponent plane), those values' frequency ranks as 4-bit codes packed two to a byte, then
   Huffman. Coding pairs halves Huffman's per-symbol loss, which is what brings the exponent to
   within about 0.02 bits of its entropy. Rarer values are escaped and stored as they are.

Payload: u8 version (1), u8 item size, then per plane u8 method and u32 length and its bytes,
then the trailing bytes that do not fill an element, raw. Every length is checked against the
chunk's known size before anything is allocated.

The byte-plane loops run in C when the optional extension ``_bytegroup`` was built at
install, and in numpy otherwise; both give the same bytes, both ways. Decoding (pair expansion,
interleave and rotation) writes into a caller's buffer; encoding (rotation and split into
planes, rank coding and packing of pairs, escapes) writes into per-thread scratch buffers, so a
chunk allocates only its entropy-coded planes and its payload.
"""

from __future__ import annotations

import struct
import threading

import numpy as np
import zstandard

from modelmanager.core.ids import BytesLike
from modelmanager.errors import IntegrityError

try:
    from modelmanager.core.codecs import _bytegroup as _native
except ImportError:  # built without a C compiler: the numpy loops below do the same work
    _native = None  # type: ignore[assignment]
if _native is not None and not hasattr(_native, "pair"):
    _native = None  # type: ignore[assignment]  # built from a source without the C encode

#: Whether the C loops are in use, decoding and encoding (benchmarks and tests report it).
NATIVE = _native is not None

ID = 2
NAME = "bytegroup"
VERSION = 1
RAW, HUFFMAN, PAIRS = 0, 1, 2
_HEAD = struct.Struct("<BB")
_PLANE = struct.Struct("<BI")
_PAIRS_HEAD = struct.Struct("<BI")  # table size, escape count
ESCAPE = 15
#: Elements of a plane sampled to decide on pair coding and to rank its values.
SAMPLE = 65536
#: Keep a coded plane only when it is at most this fraction of the raw plane.
PLANE_PAYS = 0.98

#: Bytes per element of the float dtypes this codec understands (safetensors spellings).
FLOAT_ITEMSIZE = {
    "BF16": 2, "F16": 2, "F32": 4, "F64": 8,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
}  # fmt: skip

_local = threading.local()


def _huffman() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "pair", None)
    if pair is None:
        params = zstandard.ZstdCompressionParameters(
            compression_level=1, strategy=zstandard.STRATEGY_FAST, min_match=7,
            search_log=1, hash_log=6, chain_log=6, target_length=0, write_content_size=True,
        )  # fmt: skip
        pair = _local.pair = (
            zstandard.ZstdCompressor(compression_params=params),
            zstandard.ZstdDecompressor(),
        )
    return pair


def _rotl(words: np.ndarray, bits: int) -> np.ndarray:
    one, back = words.dtype.type(1), words.dtype.type(bits - 1)
    out: np.ndarray = (words << one) | (words >> back)
    return out


def _rotr(words: np.ndarray, bits: int) -> np.ndarray:
    one, back = words.dtype.type(1), words.dtype.type(bits - 1)
    out: np.ndarray = (words >> one) | (words << back)
    return out


def _pairs(plane: np.ndarray, j: int = 0) -> list[BytesLike] | None:
    """Plane ``j`` as 4-bit frequency ranks packed in pairs, Huffman-coded, in payload parts
    (header, value table, escapes, codes); None if unsuitable.

    The rank table comes from a sample (a full histogram costs more than the coding); values
    the sample missed are escaped, so the result is exact whatever the sample saw.
    """
    n = len(plane)
    sample = plane[:SAMPLE]
    counts = np.bincount(sample, minlength=256)
    order = np.argsort(counts)[::-1]
    common = order[:ESCAPE][counts[order[:ESCAPE]] > 0]
    if len(sample) - int(counts[common].sum()) > len(sample) // 64:
        return None  # too many distinct values: pairs would not pay
    rank = np.full(256, ESCAPE, dtype=np.uint8)
    rank[common] = np.arange(len(common), dtype=np.uint8)
    escaped: BytesLike
    if _native is not None:
        packed = _scratch(("packed", 0), (n + 1) // 2)
        escapes = _scratch(("escapes", j), n // 32)
        count = _native.pair(packed, escapes, plane, n, rank)
        if count < 0:
            return None  # more escapes than n // 32, as below
        escaped = escapes[:count].data
    else:
        codes = np.take(rank, plane)
        escapes = plane[codes == ESCAPE]
        if len(escapes) > n // 32:
            return None
        if len(codes) % 2:
            codes = np.append(codes, np.uint8(0))
        packed = (codes[0::2] << np.uint8(4)) | codes[1::2]
        count, escaped = len(escapes), escapes.data
    body: bytes = _huffman()[0].compress(packed.data)
    table: bytes = common.astype(np.uint8).tobytes()
    return [_PAIRS_HEAD.pack(len(common), count), table, escaped, body]


def _pairs_parts(blob: memoryview, n: int) -> tuple[memoryview, memoryview, np.ndarray]:
    """A pair plane's value table, escapes and decoded 4-bit codes (two to a byte)."""
    if len(blob) < _PAIRS_HEAD.size:
        raise IntegrityError("bytegroup pair plane is truncated")
    size, n_esc = _PAIRS_HEAD.unpack_from(blob)
    pos = _PAIRS_HEAD.size
    if size > ESCAPE or n_esc > n or len(blob) < pos + size + n_esc:
        raise IntegrityError("bytegroup pair plane header is inconsistent")
    packed = _decode_huffman(blob[pos + size + n_esc :], (n + 1) // 2, "packed")
    return blob[pos : pos + size], blob[pos + size : pos + size + n_esc], packed


def _unpairs(blob: memoryview, n: int, j: int = 0) -> np.ndarray:
    """Pair-coded plane ``j`` back as ``n`` bytes."""
    table_bytes, escapes_bytes, packed = _pairs_parts(blob, n)
    if _native is not None:
        into = _scratch(("plane", j), n)
        if _native.unpair(into, n, packed, table_bytes, escapes_bytes) != len(escapes_bytes):
            raise IntegrityError("bytegroup pair plane has the wrong number of escapes")
        return into
    table = np.frombuffer(table_bytes, np.uint8)
    escapes = np.frombuffer(escapes_bytes, np.uint8)
    lookup = np.zeros(16, dtype=np.uint8)
    lookup[: len(table)] = table
    # One table turns each packed byte into both of its values at once (little-endian pair).
    both = np.arange(256, dtype=np.uint16)
    pair_table = lookup[both >> 4].astype("<u2") | (lookup[both & 15].astype("<u2") << 8)
    plane: np.ndarray = np.take(pair_table, packed).astype("<u2", copy=False).view(np.uint8)[:n]
    if len(escapes):
        high = np.flatnonzero((packed >> np.uint8(4)) == ESCAPE) * 2
        low = np.flatnonzero((packed & np.uint8(15)) == ESCAPE) * 2 + 1
        where = np.sort(np.concatenate([high, low]))
        where = where[where < n]
        if len(where) != len(escapes):
            raise IntegrityError("bytegroup pair plane has the wrong number of escapes")
        plane[where] = escapes
    # An escape the header does not count decodes to a wrong byte: the chunk hash refuses it.
    return plane


def _decode_huffman(blob: memoryview, expected: int, slot: str | int) -> np.ndarray:
    """A Huffman-coded plane's ``expected`` bytes, in this thread's scratch buffer ``slot``."""
    try:
        declared = zstandard.frame_content_size(blob)
    except zstandard.ZstdError as e:
        raise IntegrityError(f"bytegroup plane is not a zstd frame ({e})") from None
    if declared != expected:
        raise IntegrityError(f"bytegroup plane declares {declared} bytes, expected {expected}")
    out = _scratch(("huffman", slot), expected)
    got = 0
    try:  # zstd's streaming decoder writes into our buffer (decompress() would allocate)
        with _huffman()[1].stream_reader(blob, read_size=max(1, len(blob))) as reader:
            while got < expected and (step := reader.readinto(out[got:])) > 0:
                got += step
    except zstandard.ZstdError as e:
        raise IntegrityError(f"bytegroup plane is damaged ({e})") from None
    if got != expected:
        raise IntegrityError("bytegroup plane has the wrong length")
    return out


def _scratch(slot: tuple[str, str | int], n: int) -> np.ndarray:
    """This thread's reusable buffer ``slot``, ``n`` bytes: no allocation per chunk.

    Planes live only while one chunk decodes or encodes (interleaved into its output, or joined
    into its payload, before :func:`decode` or :func:`encode` returns), so each thread needs
    one buffer per slot, kept at the largest size seen: a few plane-sized buffers per thread
    (an encode: the chunk's size for its planes, half a plane for packed codes, and n / 32
    bytes of escapes per plane).
    """
    buffers: dict[tuple[str, str | int], np.ndarray] | None = getattr(_local, "scratch", None)
    if buffers is None:
        buffers = _local.scratch = {}
    buffer = buffers.get(slot)
    if buffer is None or len(buffer) < n:
        buffer = buffers[slot] = np.empty(n, np.uint8)
    return buffer[:n]


def encode(data: BytesLike, itemsize: int) -> bytes:
    """Code ``data`` as elements of ``itemsize`` bytes (1, 2, 4 or 8); see the module doc."""
    n = len(data) // itemsize
    planes = _split(data, n, itemsize)
    out: list[BytesLike] = [_HEAD.pack(VERSION, itemsize)]
    huffman = _huffman()[0]
    for j in range(itemsize):
        plane = planes[j]
        parts: list[BytesLike] = [plane.data]
        method, size = RAW, n
        # A plane of few common values (an exponent) is coded in pairs; only the others are
        # tried with plain Huffman: one entropy-coding pass per plane, not two.
        paired = _pairs(plane, j)
        paired_size = sum(len(p) for p in paired) if paired is not None else n
        if paired is not None and paired_size < PLANE_PAYS * n:
            parts, method, size = paired, PAIRS, paired_size
        else:
            coded = huffman.compress(plane.data)
            if len(coded) < PLANE_PAYS * n:
                parts, method, size = [coded], HUFFMAN, len(coded)
            del coded  # a plane-sized attempt that did not pay is not kept until the join
        out.append(_PLANE.pack(method, size))
        out.extend(parts)
    out.append(memoryview(data)[n * itemsize :])
    # One copy of every part into the payload (the planes live in this thread's scratch).
    return b"".join(out)


def _split(data: BytesLike, n: int, itemsize: int) -> np.ndarray:
    """The rotated elements' byte planes, one row each (C: in this thread's scratch buffer)."""
    if _native is not None:
        planes = _scratch(("split", 0), n * itemsize)
        _native.split(planes, n, itemsize, data)
        return planes.reshape(itemsize, n)
    words = np.frombuffer(data, dtype=f"<u{itemsize}", count=n)
    rotated = _rotl(words, 8 * itemsize).astype(f"<u{itemsize}", copy=False)
    # One transposing copy gives every plane contiguous (3x faster than a copy per plane).
    return np.ascontiguousarray(rotated.view(np.uint8).reshape(n, itemsize).T)


def decode(payload: BytesLike, length: int, out: memoryview | None = None) -> BytesLike:
    """The ``length`` plain bytes of a bytegroup payload; IntegrityError when damaged.

    With ``out`` (writable, at least ``length`` bytes) they are written there and a view of it
    returned; a damaged payload may leave it partly written.
    """
    view = memoryview(payload)
    if len(view) < _HEAD.size:
        raise IntegrityError("bytegroup payload is truncated")
    version, itemsize = _HEAD.unpack_from(view)
    if version != VERSION or itemsize not in (1, 2, 4, 8):
        raise IntegrityError(f"bytegroup payload has unknown layout {version}/{itemsize}")
    n = length // itemsize
    planes: list[BytesLike | np.ndarray] = []
    pos = _HEAD.size
    for j in range(itemsize):
        if len(view) < pos + _PLANE.size:
            raise IntegrityError("bytegroup payload is truncated")
        method, size = _PLANE.unpack_from(view, pos)
        pos += _PLANE.size
        blob = view[pos : pos + size]
        if len(blob) != size:
            raise IntegrityError("bytegroup payload is truncated")
        pos += size
        if method == RAW:
            if size != n:
                raise IntegrityError("bytegroup raw plane has the wrong length")
            planes.append(blob)
        elif method == HUFFMAN:
            planes.append(_decode_huffman(blob, n, j))
        elif method == PAIRS:
            planes.append(_unpairs(blob, n, j))
        else:
            raise IntegrityError(f"bytegroup plane has unknown method {method}")
    tail = view[pos:]
    if len(tail) != length - n * itemsize:
        raise IntegrityError("bytegroup payload has the wrong length")
    if _native is not None:
        dest = out if out is not None else np.empty(length, np.uint8).data
        _native.interleave(dest, n, planes)
        dest[n * itemsize : length] = tail
        return dest[:length]
    restored = _interleave_numpy([np.frombuffer(p, np.uint8) for p in planes], itemsize)
    if out is not None:
        out[: n * itemsize] = restored.view(np.uint8).data
        out[n * itemsize : length] = tail
        return out[:length]
    if not len(tail):
        return restored.view(np.uint8).data
    return restored.tobytes() + bytes(tail)


def _interleave_numpy(planes: list[np.ndarray], itemsize: int) -> np.ndarray:
    """The elements from their planes, rotated back (numpy: when the C loops are not built)."""
    # Interleave the planes with shifts (several times faster than strided byte writes).
    wide = np.dtype(f"<u{itemsize}")
    words = planes[0].astype(wide)
    for j in range(1, itemsize):
        words |= planes[j].astype(wide) << wide.type(8 * j)
    restored: np.ndarray = _rotr(words, 8 * itemsize).astype(wide, copy=False)
    return restored
