"""Hostile inputs of the headers slice for the bad-input catalogue (tests/support/hostile.py).

Safetensors headers and GGUF tensor tables that once ended in a traceback or took hundreds of
megabytes, and odd but valid files that must import and come back byte for byte.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from tests.support.builders import write_safetensors
from tests.support.hostile import Builder, Case, Legal, blob, st

F32 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}


def gguf_raw(
    tensors: list[tuple[bytes, list[int], int, int]],
    data: bytes,
    kvs: list[tuple[bytes, str]] | None = None,
) -> bytes:
    """A GGUF v3 file from raw parts: (name, dims, ggml type, offset) per tensor, string
    metadata, then the data (aligned to 32 bytes), for layouts no writer would produce."""

    def text(b: bytes) -> bytes:
        return struct.pack("<Q", len(b)) + b

    pairs = kvs or []
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(pairs))
    for key, value in pairs:
        out += text(key) + struct.pack("<I", 8) + text(value.encode())
    for name, dims, kind, offset in tensors:
        out += text(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", kind, offset)
    return out + b"\0" * (-len(out) % 32) + data


def many_tensors(count: int) -> Builder:
    """A safetensors file declaring ``count`` one-byte tensors (a small file, a big index)."""

    def build(p: Path) -> None:
        entries = ",".join(
            f'"t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{i + 1}]}}'
            for i in range(count)
        )
        header = ("{" + entries + "}").encode()
        p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * count)

    return build


def odd_but_valid(p: Path) -> None:
    """Non-ASCII names, a zero-size tensor, metadata with an escape character (real library)."""
    write_safetensors(
        p,
        {
            "ß.日本": np.arange(6, dtype=np.float32),
            "empty": np.zeros((0, 3), dtype=np.float16),
            "emoji.😀": np.ones(2, dtype=np.int64),
        },
        {"note": "colour \x1b[31mred\x1b[0m", "dtype": "not a tensor"},
    )


def gguf_many_keys(p: Path) -> None:
    """A GGUF with 3,000 metadata keys, written by the gguf library."""
    import gguf

    w = gguf.GGUFWriter(str(p), "llama")
    for i in range(3000):
        w.add_string(f"test.key.{i}", f"value {i}")
    w.add_tensor("w", np.arange(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _gguf_kvs(count: int, entries: bytes) -> bytes:
    """A GGUF v3 file with no tensors and ``count`` raw metadata entries."""
    return b"GGUF" + struct.pack("<IQQ", 3, 0, count) + entries


def _key(name: bytes) -> bytes:
    return struct.pack("<Q", len(name)) + name


def gguf_array(count: int, item: int, each: bytes) -> Builder:
    """One metadata array of ``count`` elements of GGUF type ``item``, each ``each`` bytes
    (8 zero bytes is an empty string): GGUFReader built numpy objects per element."""
    return blob(_gguf_kvs(1, _key(b"bomb") + struct.pack("<IIQ", 9, item, count) + each * count))


def gguf_keys(count: int) -> Builder:
    """``count`` one-byte metadata entries."""
    kv = b"".join(_key(b"k%d" % i) + struct.pack("<IB", 0, 0) for i in range(count))
    return blob(_gguf_kvs(count, kv))


def gguf_tensors(count: int) -> Builder:
    """``count`` one-byte I8 tensors."""
    infos = b"".join(_key(b"t%d" % i) + struct.pack("<IQIQ", 1, 1, 24, i) for i in range(count))
    head = b"GGUF" + struct.pack("<IQQ", 3, count, 0) + infos
    return blob(head + b"\0" * (-len(head) % 32) + b"\0" * count)


def gguf_vocabulary(p: Path, tokens: int = 256_000) -> None:
    """A llama.cpp-style GGUF with a 256k-token vocabulary (tokens, scores, types, merges),
    written by the gguf library: the largest real vocabularies are about this size."""
    import gguf

    w = gguf.GGUFWriter(str(p), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i}" for i in range(tokens)])
    w.add_token_scores([float(i) for i in range(tokens)])
    w.add_token_types([1] * tokens)
    w.add_token_merges([f"a{i} b{i}" for i in range(tokens)])
    w.add_tensor("w", np.arange(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


CASES: list[Case] = [Case(*c) for c in [
    ("st lone surrogate in a tensor name", "m.safetensors", st({"w\ud800": F32}, b"\0" * 16),
     "not valid Unicode"),
    ("st lone surrogate in a metadata value", "m.safetensors",
     st({"__metadata__": {"k": "v\udc80"}, "w": F32}, b"\0" * 16), "not valid Unicode"),
    ("st lone surrogate in a metadata key", "m.safetensors",
     st({"__metadata__": {"k\udc80": "v"}, "w": F32}, b"\0" * 16), "not valid Unicode"),
    ("st float shape", "m.safetensors",
     st({"w": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}, b"\0" * 16),
     "non-integer"),
    ("st more tensors than a file may hold", "m.safetensors", many_tensors(100_001),
     "declares 100001 tensors"),
    ("st header over the limit names its tensor count", "m.safetensors",
     st(b'{"t":{"data_offsets":[0,0]}' + b" " * (17 << 20) + b"}"), "1 tensors declared"),
    ("gguf tensors sharing one data offset", "m.gguf",
     blob(gguf_raw([(b"a", [4], 0, 0), (b"b", [4], 0, 0)], b"\0" * 16)), "overlaps"),
    ("gguf overlapping tensors", "m.gguf",
     blob(gguf_raw([(b"a", [8], 0, 0), (b"b", [4], 0, 16)], b"\0" * 32)), "overlaps"),
    ("gguf array of 2M empty strings", "m.gguf", gguf_array(2_000_000, 8, b"\0" * 8),
     "2000000 elements in array 'bomb', over the limit of 1048576"),
    ("gguf array of 4M bytes", "m.gguf", gguf_array(4_000_000, 0, b"\0"),
     "4000000 elements in array 'bomb', over the limit"),
    ("gguf 300,000 metadata entries", "m.gguf", gguf_keys(300_000),
     "300000 metadata entries, over the limit of 65536"),
    ("gguf 200,000 tensors", "m.gguf", gguf_tensors(200_000),
     "200000 tensors, over the limit of 100000"),
    ("gguf array longer than the file", "m.gguf", gguf_array(1_000_000, 8, b""),
     "cannot fit in the 0 bytes left"),
]]  # fmt: skip

LEGAL: list[Legal] = [Legal(*c) for c in [
    ("st non-ASCII names, a zero-size tensor, ESC in metadata", "m.safetensors", odd_but_valid),
    ("gguf with 3,000 metadata keys", "m.gguf", gguf_many_keys),
    ("gguf with a 256k-token vocabulary", "m.gguf", gguf_vocabulary),
]]  # fmt: skip
