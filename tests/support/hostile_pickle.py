"""Hostile inputs of the pickle slice for the bad-input catalogue (tests/support/hostile.py).

Every pickle here is written opcode by opcode (protocol 2, the one torch.save uses), so the
cases need no torch; the legal ones that need real torch files skip themselves without it.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.support.hostile import Builder, Case, Legal, patched

STOP = b"."


def s(text: str) -> bytes:
    """BINUNICODE: a str (lone surrogates kept, as pickle writes them)."""
    raw = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(value: int) -> bytes:
    """BININT: a 32-bit signed int."""
    return b"J" + struct.pack("<i", value)


def storage(key: str = "0", numel: int = 4, stype: str = "FloatStorage") -> bytes:
    """The persistent id torch writes for a storage, then BINPERSID."""
    return (
        b"(" + s("storage") + f"ctorch\n{stype}\n".encode() + s(key) + s("cpu") + i(numel) + b"tQ"
    )


def tensor(pid: bytes, shape: tuple[int, ...] = (4,), stride: tuple[int, ...] = (1,)) -> bytes:
    """_rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())."""
    dims = b"(" + b"".join(i(d) for d in shape) + b"t"
    steps = b"(" + b"".join(i(d) for d in stride) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + i(0) + dims + steps
            + b"\x89ccollections\nOrderedDict\n)RtR")  # fmt: skip


def state(*items: tuple[str, bytes]) -> bytes:
    """A protocol-2 pickle of a dict {name: object pickled as the given bytes}."""
    return b"\x80\x02}(" + b"".join(s(k) + v for k, v in items) + b"u" + STOP


def torch_zip(pickle_bytes: bytes, storages: dict[str, bytes] | None = None,
              deflate: bool = False) -> Builder:  # fmt: skip
    """A torch.save-shaped zip: archive/data.pkl (deflated if asked), byteorder, storages."""

    def build(p: Path) -> None:
        with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_STORED) as z:
            kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            z.writestr("archive/data.pkl", pickle_bytes, compress_type=kind)
            z.writestr("archive/byteorder", "little")
            for key, data in (storages or {"0": b"\1" * 16}).items():
                z.writestr(f"archive/data/{key}", data)

    return build


def dag(levels: int) -> bytes:
    """A tuple of two references to a tuple of two references ... : 2**levels leaves."""
    return b"N" + b"q\x000h\x00h\x00\x86" * levels


def build_state(target: bytes, attrs: dict[str, int]) -> bytes:
    """BUILD on the object on top of the stack, with a dict state ``attrs``."""
    return target + b"}(" + b"".join(s(k) + i(v) for k, v in attrs.items()) + b"ub"


def _flags(mask: int, member: bytes = b"archive/data.pkl") -> Callable[[bytearray], None]:
    """An edit setting general-purpose flag bits on one member (local and central headers)."""

    def edit(data: bytearray) -> None:
        for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            pos = data.find(sig)
            while pos >= 0:
                name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
                if data[name_at : name_at + len(member)] == member:
                    (old,) = struct.unpack_from("<H", data, pos + at)
                    struct.pack_into("<H", data, pos + at, old | mask)
                pos = data.find(sig, pos + 1)

    return edit


def _method(method: int, member: bytes = b"archive/data.pkl") -> Callable[[bytearray], None]:
    """An edit setting the compression method of one member (local and central headers)."""

    def edit(data: bytearray) -> None:
        for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
            pos = data.find(sig)
            while pos >= 0:
                name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
                if data[name_at : name_at + len(member)] == member:
                    struct.pack_into("<H", data, pos + at, method)
                pos = data.find(sig, pos + 1)

    return edit


def _bad_crc(member: bytes) -> Callable[[bytearray], None]:
    """An edit flipping the CRC of one member (central directory, which zipfile checks)."""

    def edit(data: bytearray) -> None:
        pos = data.find(b"PK\x01\x02")
        while pos >= 0:
            if data[pos + 46 : pos + 46 + len(member)] == member:
                data[pos + 16] ^= 0xFF
            pos = data.find(b"PK\x01\x02", pos + 1)

    return edit


def shared_local_header(npz: bool = False) -> Builder:
    """Two central entries pointing at one local header (the second entry's offset rewritten)."""

    def build(p: Path) -> None:
        if npz:
            npy = (b"\x93NUMPY\x01\x00" + struct.pack("<H", 70)
                   + b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}".ljust(69)
                   + b"\n" + b"\1" * 16)  # fmt: skip
            members = {"a.npy": npy, "b.npy": npy}
        else:
            good = state(("w", tensor(storage("0"))), ("v", tensor(storage("1"))))
            members = {"archive/data.pkl": good, "archive/data/0": b"\1" * 16,
                       "archive/data/1": b"\2" * 16}  # fmt: skip
        with zipfile.ZipFile(p, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
        data = bytearray(p.read_bytes())
        central = [m for m in range(len(data)) if data[m : m + 4] == b"PK\x01\x02"]
        first = struct.unpack_from("<I", data, central[-2] + 42)[0]
        struct.pack_into("<I", data, central[-1] + 42, first)
        p.write_bytes(bytes(data))

    return build


def memo_flood(count: int) -> bytes:
    """A list appended ``count`` references to itself from the memo (2 bytes each)."""
    return b"\x80\x02]q\x00(" + b"h\x00" * count + b"e."


def deflated_flood(size: int) -> Builder:
    """A data.pkl of ``size`` EMPTY_LIST opcodes, deflated to a few hundred KB."""

    def build(p: Path) -> None:
        body = b"\x80\x02" + b"]" * size + STOP
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("archive/data.pkl", body, compress_type=zipfile.ZIP_DEFLATED,
                       compresslevel=9)  # fmt: skip

    return build


def _torch_child(script: str) -> Builder:
    """A file written by real torch in a child process (torch stays out of the test process,
    whose size every later child would inherit in its peak RSS)."""

    def build(p: Path) -> None:
        import pytest

        pytest.importorskip("torch")
        subprocess.run([sys.executable, "-c", "import sys, torch as t\n" + script, str(p)],
                       check=True)  # fmt: skip

    return build


_real_torch = _torch_child(
    "base = t.arange(12, dtype=t.float32).reshape(3, 4)\n"
    "shared = t.ones(3, dtype=t.bfloat16)\n"
    "t.save({'base': base, 'row': base[1], 'col': base[:, 2], 'a': shared, 'b': shared,\n"
    "        'steps': t.tensor(7), 'meta': {'epoch': 3, 'names': ['x', 'y']}}, sys.argv[1])"
)
_real_legacy = _torch_child(
    "base = t.arange(6, dtype=t.float64)\n"
    "t.save({'w': base, 'view': base[2:], 'h': t.zeros(2, 2, dtype=t.float16)}, sys.argv[1],\n"
    "       _use_new_zipfile_serialization=False)"
)


def _npz_mixed(p: Path) -> None:
    """An .npz with one stored and one deflated member, written by numpy's own writer."""
    import numpy as np

    arrays = {"stored": np.arange(10, dtype=np.float32), "packed": np.zeros(4096, np.int16)}
    with zipfile.ZipFile(p, "w") as z:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy")
            info.compress_type = zipfile.ZIP_DEFLATED if name == "packed" else zipfile.ZIP_STORED
            with z.open(info, "w") as member:
                np.lib.format.write_array(member, array)


F4 = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}"
GOOD = state(("w", tensor(storage())))


def zip_flood(count: int, declared: int | None = None, name: bytes = b"archive/data/%d") -> Builder:
    """A zip whose central directory lists ``count`` empty members (names ``name % i``), all
    pointing at one local header, with a zip64 end record declaring ``declared`` (default:
    the truth). zipfile built ~500 bytes of objects per record before any check of ours."""

    def build(p: Path) -> None:
        first = name % 0
        local = b"PK\x03\x04" + struct.pack("<5H3I2H", 20, 0, 0, 0, 0, 0, 0, 0, len(first), 0)
        head = local + first
        records = b"".join(
            b"PK\x01\x02" + struct.pack("<6H3I5HII", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(n), 0, 0,
                                         0, 0, 0, 0) + n
            for n in (name % k for k in range(count))
        )  # fmt: skip
        total = count if declared is None else declared
        end64 = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, total, total,
                                             len(records), len(head))  # fmt: skip
        locator = b"PK\x06\x07" + struct.pack("<IQI", 0, len(head) + len(records), 1)
        end = b"PK\x05\x06" + struct.pack("<4H2IH", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                                           0xFFFFFFFF, 0)  # fmt: skip
        p.write_bytes(head + records + end64 + locator + end)

    return build


CASES: list[Case] = [Case(*c) for c in [
    ("pt BUILD gives a storage a negative item size", "m.pt",
     torch_zip(state(("w", tensor(build_state(storage(), {"itemsize": -4}))))), "BUILD"),
    ("pt BUILD gives a storage a zero item size", "m.pt",
     torch_zip(state(("w", tensor(build_state(storage(), {"itemsize": 0}))))), "BUILD"),
    ("pt BUILD rewrites a storage type", "m.pt",
     torch_zip(b"\x80\x02" + build_state(b"ctorch\nFloatStorage\n", {"itemsize": 0}) + STOP),
     "BUILD"),
    ("pt persistent id a DAG of 2**40 leaves", "m.pt",
     torch_zip(b"\x80\x02(" + s("storage") + dag(40) + b"tQ."), "persistent id"),
    ("pt DAG of 2**40 leaves as a dict key", "m.pt",
     torch_zip(b"\x80\x02}" + dag(40) + i(1) + b"s."), "key"),
    ("pt DAG of 2**40 leaves as a device", "m.pt",
     torch_zip(b"\x80\x02ctorch\ndevice\n" + dag(40) + b"\x85R."), "device"),
    ("pt 12M memo references", "m.pt", torch_zip(memo_flood(12_000_000)), "objects"),
    ("pt sparse memo index", "m.pt", torch_zip(b"\x80\x02Nr\x00\x00\x00\x10."), "memo"),
    ("pt deflated data.pkl of 200M opcodes", "m.pt", deflated_flood(200_000_000), "over the limit"),
    ("pt data.pkl with a bad CRC", "m.pt", patched(torch_zip(GOOD), _bad_crc(b"archive/data.pkl")),
     "CRC"),
    ("pt encrypted data.pkl", "m.pt", patched(torch_zip(GOOD), _flags(1)), "encrypted"),
    ("pt unknown compression method", "m.pt", patched(torch_zip(GOOD), _method(99)),
     "compression"),
    ("pt two members share one local header", "m.pt", shared_local_header(), "local header"),
    ("pt lone surrogate tensor name", "m.pt", torch_zip(state(("\udc80", tensor(storage())))),
     "UTF-8"),
    ("pt tensor with a negative storage offset", "m.pt",
     torch_zip(state(("w", tensor(storage()).replace(i(0) + b"(", i(-1) + b"(", 1)))), "offset"),
    ("pt tensor key a huge int", "m.pt",
     torch_zip(b"\x80\x02}\x8b" + struct.pack("<I", 2000) + b"\xff" * 1999 + b"\x7f"
               + tensor(storage()) + b"s."),
     "key"),
    ("legacy deep pickle past the cap", "m.pt",
     lambda p: p.write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b"\x80\x02"
                             + b"]" * (80 << 20) + b"."), "over the limit"),
    ("npz encrypted member", "a.npz",
     patched(lambda p: _npz_plain(p), _flags(1, b"a.npy")), "encrypted"),
    ("npz unknown compression method", "a.npz",
     patched(lambda p: _npz_plain(p), _method(99, b"a.npy")), "compression"),
    ("npz two members share one local header", "a.npz", shared_local_header(npz=True),
     "local header"),
    ("npz member name a lone surrogate", "a.npz",
     lambda p: _npz_plain(p, b"\xed\xb2\x80.npy"), "UTF-8"),
    ("pt zip of 1M members", "m.pt", zip_flood(1_000_000),
     "declares 1000000 members, over the limit of 131072"),
    ("npz central directory of 600k members declaring 1", "a.npz",
     zip_flood(600_000, declared=1, name=b"%x"), "holds over 131072 members"),
]]  # fmt: skip


def _npz_plain(p: Path, name: bytes = b"a.npy") -> None:
    """An .npz of one stored float32 member named ``name`` (raw bytes, flagged as UTF-8)."""
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", 70) + F4.ljust(69) + b"\n" + b"\1" * 16
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(zipfile.ZipInfo("n" * len(name)), npy)
    data = bytearray(p.read_bytes().replace(b"n" * len(name), name))
    _flags(0x800, name)(data)
    p.write_bytes(bytes(data))


LEGAL: list[Legal] = [Legal(*c) for c in [
    ("pt real torch.save with views and shared storages", "m.pt", _real_torch),
    ("pt real legacy checkpoint with a view", "m.pt", _real_legacy),
    ("pt hand-written state dict", "m.pt", torch_zip(GOOD)),
    ("pt bad CRC on a storage is stored as it is", "m.pt",
     patched(torch_zip(GOOD), _bad_crc(b"archive/data/0"))),
    ("npz with a deflated member", "a.npz", _npz_mixed),
]]  # fmt: skip
