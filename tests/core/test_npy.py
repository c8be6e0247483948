"""NumPy .npy and .npz: indexed like numpy reads them; hostile headers and archives refused."""

from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.formats import base, index_file
from modelmanager.errors import FormatError
from tests.support.hostile import Builder
from tests.support.hostile_pickle import zip_flood


def _index(path: Path):  # type: ignore[no-untyped-def]
    return index_file(path, path.stat().st_size)


@pytest.mark.parametrize(
    ("array", "dtype"),
    [
        (np.arange(12, dtype="<f4").reshape(3, 4), "F32"),
        (np.arange(12, dtype=">f8").reshape(3, 4), "F64_BE"),
        (np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)), "I16"),
        (np.array([True, False]), "BOOL"),
        (np.zeros((0, 5), dtype=np.uint8), "U8"),
        (np.array(3.5, dtype=np.float16), "F16"),
        (np.arange(4, dtype=np.complex64), "C64"),
    ],
)
def test_npy_index_matches_numpy(tmp_path: Path, array: np.ndarray, dtype: str) -> None:
    path = tmp_path / "a.npy"
    np.save(path, array)
    (tensor,) = _index(path).tensors
    assert (tensor.dtype, tensor.shape) == (dtype, array.shape)
    raw = path.read_bytes()
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    assert raw[tensor.start : tensor.end] == array.tobytes(order=order)


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
def test_npz_members_are_tensors(tmp_path: Path, compressed: bool) -> None:
    arrays = {"w": np.arange(1000, dtype=np.float32), "nested/b": np.ones((2, 3), np.int64)}
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    index = _index(path)
    assert index.format == "npz"
    by_name = {t.name: t for t in index.tensors}
    assert {n: (t.dtype, t.shape) for n, t in by_name.items()} == {
        "w": ("F32", (1000,)), "nested/b": ("I64", (2, 3)),
    }  # fmt: skip
    if not compressed:
        raw = path.read_bytes()
        assert raw[by_name["w"].start : by_name["w"].end] == arrays["w"].tobytes()


def _npy(header: bytes, data: bytes = b"", version: int = 1) -> bytes:
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(header)) + header + data


def npz_bomb(path: Path) -> Path:
    """A valid .npz whose one member inflates to 1 GiB of zeros (a few MB on disk)."""
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1073741824,)}"
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("x.npy", "w", force_zip64=True) as member,
    ):
        member.write(_npy(header))
        block = bytes(1 << 24)
        for _ in range(64):
            member.write(block)
    return path


BAD_NPY = [
    ("object dtype", _npy(b"{'descr': '|O', 'fortran_order': False, 'shape': (2,)}"), "pickles"),
    ("code in header", _npy(b"__import__('os').system('touch pwned')"), "not a literal dict"),
    ("huge header", b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 30), "over the limit"),
    ("shape overflowing", _npy(b"{'descr': '<f4', 'fortran_order': False, "
                               b"'shape': (18446744073709551616,)}"), "needs"),
    ("negative shape", _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"),
     "sizes >= 0"),
    ("terabyte array", _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (274877906944,)}",
                            b"\0" * 16), "truncated"),
    ("extra keys", _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"),
     "exactly"),
    ("structured dtype", _npy(b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}"),
     "structured"),
    ("unknown version", b"\x93NUMPY\x09\x00" + b"\0" * 20, "unknown .npy version"),
    ("deep nesting", _npy(b"[" * 5000 + b"]" * 5000), "not a literal dict"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "blob", "message"), BAD_NPY, ids=[b[0] for b in BAD_NPY])
def test_hostile_npy_files_are_refused(tmp_path: Path, why: str, blob: bytes, message: str) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(blob)
    with pytest.raises(FormatError) as info:
        _index(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_npz_with_a_deflate_bomb_costs_nothing(tmp_path: Path) -> None:
    """A member that inflates to 1 GiB: only its header is ever inflated."""
    import tracemalloc

    path = npz_bomb(tmp_path / "bomb.npz")
    assert path.stat().st_size < 4 << 20
    tracemalloc.start()
    (tensor,) = _index(path).tensors
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert tensor.shape == (1 << 30,)
    assert peak < 8 << 20, peak


def test_npz_zip_slip_and_duplicate_members_are_refused(tmp_path: Path) -> None:
    good = _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", b"\0" * 4)
    slip = tmp_path / "slip.npz"
    with zipfile.ZipFile(slip, "w") as z:
        z.writestr("../../evil.npy", good)
    with pytest.raises(FormatError, match="outside the archive"):
        _index(slip)
    dup = tmp_path / "dup.npz"
    with zipfile.ZipFile(dup, "w") as z:
        z.writestr("a.npy", good)
        with pytest.warns(UserWarning, match="Duplicate"):
            z.writestr("a.npy", good)
    with pytest.raises(FormatError, match="appears twice"):
        _index(dup)


def test_truncated_npy_and_npz_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(100.0))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(FormatError, match="truncated"):
        _index(path)
    npz = tmp_path / "a.npz"
    np.savez(npz, a=np.arange(100.0))
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(FormatError, match="not a readable zip"):
        _index(npz)


@pytest.mark.parametrize(
    ("why", "cause"),
    [("npz encrypted member", "is encrypted"),
     ("npz unknown compression method", "compression"),
     ("npz two members share one local header", "local header"),
     ("npz member name a lone surrogate", "not valid UTF-8")],
)  # fmt: skip
def test_npz_zip_tricks_are_one_line_errors(tmp_path: Path, why: str, cause: str) -> None:
    """Encrypted members, unknown methods, shared local headers, bad UTF-8 names (issue 15)."""
    from tests.support import hostile_pickle

    case = next(c for c in hostile_pickle.CASES if c.why == why)
    path = tmp_path / case.name
    case.build(path)
    with pytest.raises(FormatError, match=cause) as info:
        _index(path)
    assert str(path) in str(info.value)


def test_npz_member_with_a_bad_crc_is_indexed_as_it_is(tmp_path: Path) -> None:
    """Members are not read to their end: a bad CRC is stored and given back unchanged."""
    path = tmp_path / "a.npz"
    np.savez(path, w=np.arange(4, dtype=np.float32))
    raw = bytearray(path.read_bytes())
    raw[raw.find(b"PK\x01\x02") + 16] ^= 0xFF
    path.write_bytes(bytes(raw))
    (tensor,) = _index(path).tensors
    assert bytes(raw[tensor.start : tensor.end]) == np.arange(4, dtype=np.float32).tobytes()


ZIP_FLOODS = [
    ("declared", zip_flood(200_000, name=b"%d.npy"), "declares 200000 members, over the limit"),
    ("under-declared", zip_flood(200_000, declared=1, name=b"%d.npy"),
     "holds over 131072 members (the end record declares 1)"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "build", "cause"), ZIP_FLOODS, ids=[z[0] for z in ZIP_FLOODS])
def test_a_zip_of_too_many_members_is_refused_before_zipfile_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, why: str, build: Builder, cause: str
) -> None:
    """zipfile builds ~500 bytes per member record: the count is checked first, the
    records counted by their lengths since zipfile ignores the declared count."""

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("zipfile parsed the central directory")

    path = tmp_path / "a.npz"
    build(path)
    monkeypatch.setattr(zipfile, "ZipFile", never)
    with pytest.raises(FormatError, match=re.escape(cause)):
        _index(path)


def test_a_central_directory_over_its_byte_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "MAX_ZIP_DIRECTORY", 1000)
    path = tmp_path / "a.npz"
    zip_flood(100, name=b"%d.npy")(path)
    with pytest.raises(FormatError, match=r"central directory of 5\d{3} bytes is over the limit"):
        _index(path)


def test_an_npz_of_thousands_of_arrays_is_indexed(tmp_path: Path) -> None:
    """np.savez writes one member per array: real archives stay well under the limit."""
    path = tmp_path / "many.npz"
    np.savez(path, *[np.full(2, i, dtype=np.int16) for i in range(5000)])
    index = _index(path)
    assert len(index.tensors) == 5000
    t = next(t for t in index.tensors if t.name == "arr_4999")
    assert path.read_bytes()[t.start : t.end] == np.full(2, 4999, dtype=np.int16).tobytes()
