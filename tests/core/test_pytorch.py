"""PyTorch checkpoints: indexed without torch, and no pickle can make us run anything."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from modelmanager.core.formats import index_file
from modelmanager.core.formats.pytorch import LEGACY_MAGIC
from modelmanager.errors import FormatError
from tests.support.hostile_pickle import zip_flood


def _torch():  # type: ignore[no-untyped-def]
    return pytest.importorskip("torch", reason="torch is a test-only dependency (torch==2.13.0)")


def _index(path: Path):  # type: ignore[no-untyped-def]
    return index_file(path, path.stat().st_size)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_index_matches_torch_load_and_byte_ranges_hold_the_data(
    tmp_path: Path, legacy: bool
) -> None:
    t = _torch()
    g = t.Generator().manual_seed(0)
    state = {
        "state_dict": {
            "fc.weight": t.randn(8, 4, generator=g),
            "fc.bias": t.zeros(8, dtype=t.float16),
            "emb": t.randn(3, 5, generator=g).to(t.bfloat16),
            "steps": t.tensor(7, dtype=t.int64),
        },
        "optimizer_states": [{"state": {0: {"exp_avg": t.ones(8, 4)}}}],
        "epoch": 3,
    }
    path = tmp_path / "model.ckpt"
    t.save(state, path, _use_new_zipfile_serialization=not legacy)
    index = _index(path)
    assert index.format == "pytorch"
    by_name = {e.name: e for e in index.tensors}
    assert set(by_name) == {
        "state_dict.fc.weight", "state_dict.fc.bias", "state_dict.emb", "state_dict.steps",
        "optimizer_states.0.state.0.exp_avg",
    }  # fmt: skip
    loaded = t.load(path, weights_only=True)
    raw = path.read_bytes()
    for name, tensor in [
        ("state_dict.fc.weight", loaded["state_dict"]["fc.weight"]),
        ("state_dict.fc.bias", loaded["state_dict"]["fc.bias"]),
        ("state_dict.emb", loaded["state_dict"]["emb"]),
        (
            "optimizer_states.0.state.0.exp_avg",
            loaded["optimizer_states"][0]["state"][0]["exp_avg"],
        ),
    ]:
        entry = by_name[name]
        assert entry.shape == tuple(tensor.shape)
        expected = tensor.contiguous().view(t.uint8).numpy().tobytes()
        assert raw[entry.start : entry.end] == expected
    assert by_name["state_dict.emb"].dtype == "BF16"
    assert by_name["state_dict.steps"].shape == ()


def test_views_of_one_storage_share_its_bytes(tmp_path: Path) -> None:
    t = _torch()
    base = t.arange(12, dtype=t.float32).reshape(3, 4)
    path = tmp_path / "views.pt"
    t.save({"base": base, "row": base[1], "col": base[:, 2]}, path)
    by_name = {e.name: e for e in _index(path).tensors}
    raw = path.read_bytes()
    assert raw[by_name["row"].start : by_name["row"].end] == base[1].numpy().tobytes()
    assert by_name["col"].start == by_name["base"].start + 2 * 4  # strided: span of its bytes


# -- hostile pickles: written by hand, so these run without torch --------------------------


def _torch_zip(path: Path, pickle_bytes: bytes, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/byteorder", "little")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def _legacy(path: Path, main_pickle: bytes) -> Path:
    out = io.BytesIO()
    for obj in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(obj, out, protocol=2)
    out.write(main_pickle)
    pickle.dump([], out, protocol=2)
    path.write_bytes(out.getvalue())
    return path


def _calls(module: str, name: str, arg: str) -> bytes:
    """A protocol-0 pickle that calls module.name(arg): GLOBAL, MARK, STRING, TUPLE, REDUCE."""
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
     ("subprocess", "Popen"), ("mymodule", "Evil"), ("torch._tensor", "_rebuild_from_type_v2"),
     ("numpy.core.multiarray", "_reconstruct")],
)  # fmt: skip
@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_pickles_naming_any_other_global_are_refused_and_nothing_runs(
    tmp_path: Path, module: str, name: str, layout: str
) -> None:
    marker = tmp_path / "pwned"
    payload = _calls(module, name, f"touch {marker}")
    path = tmp_path / "evil.pt"
    if layout == "zip":
        _torch_zip(path, payload)
    else:
        _legacy(path, payload)
    with pytest.raises(FormatError) as info:
        _index(path)
    assert f"{module}.{name}" in str(info.value)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_reduce_hidden_behind_an_allowed_container_is_still_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    inner = _calls("os", "system", f"touch {marker}")[:-1]  # without STOP
    payload = b"ccollections\nOrderedDict\n)R(S'k'\n" + inner + b"s."
    with pytest.raises(FormatError, match=r"os\.system"):
        _index(_torch_zip(tmp_path / "evil.pt", payload))
    assert not marker.exists()


def test_recursive_structures_do_not_hang_and_deep_ones_are_refused(tmp_path: Path) -> None:
    loop: list[object] = []
    loop.append(loop)
    index = _index(_torch_zip(tmp_path / "loop.pt", pickle.dumps({"a": loop}, protocol=2)))
    assert index.tensors == ()
    deep: object = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(FormatError, match="nested more than"):
        _index(_torch_zip(tmp_path / "deep.pt", pickle.dumps(deep, protocol=2)))


def test_zip_slip_member_names_are_refused(tmp_path: Path) -> None:
    path = _torch_zip(tmp_path / "slip.pt", pickle.dumps({}, protocol=2),
                      {"archive/../../etc/cron.d/evil": b"x"})  # fmt: skip
    with pytest.raises(FormatError, match="outside the archive"):
        _index(path)


def test_damaged_pickle_and_truncated_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="damaged pickle"):
        _index(_torch_zip(tmp_path / "bad.pt", b"\x80\x02}q\x00(X\x01"))
    good = _legacy(tmp_path / "l.pt", pickle.dumps({}, protocol=2))
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(good.read_bytes()[:20])
    with pytest.raises(FormatError):
        _index(truncated)


def test_a_zip_that_is_not_a_checkpoint_is_stored_generically(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    assert _index(path).format == "generic"


def test_storage_pointing_past_the_file_is_refused(tmp_path: Path) -> None:
    # A legacy file claiming a storage of 10**12 floats: refused before anything is read.
    storage = b"ctorch\nFloatStorage\n"
    numel = b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00"  # LONG1: 10**12 elements
    main = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(" + b"(X\x07\x00\x00\x00storage"
            + storage + b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpu" + numel
            + b"tQK\x00K\x01\x85K\x01\x85\x89tR.")  # fmt: skip
    out = io.BytesIO()
    for obj in (LEGACY_MAGIC, 1001, {}):
        pickle.dump(obj, out, protocol=2)
    out.write(main)
    pickle.dump(["0"], out, protocol=2)
    out.write(struct.pack("<q", 10**12))
    path = tmp_path / "huge.pt"
    path.write_bytes(out.getvalue())
    with pytest.raises(FormatError, match="runs past the end"):
        _index(path)


def test_content_that_only_starts_like_a_checkpoint_is_generic_unless_named_like_one(
    tmp_path: Path,
) -> None:
    header_only = pickle.dumps(LEGACY_MAGIC, protocol=2)  # a legacy magic, then nothing
    (tmp_path / "x.dat").write_bytes(header_only)
    assert _index(tmp_path / "x.dat").format == "generic"
    (tmp_path / "x.bin").write_bytes(header_only)
    with pytest.raises(FormatError, match="damaged pickle"):
        _index(tmp_path / "x.bin")  # named like a checkpoint and looks like one: it is broken
    evil = _calls("os", "system", "true")
    (tmp_path / "evil.dat").write_bytes(_legacy(tmp_path / "tmp.pt", evil).read_bytes())
    with pytest.raises(FormatError, match=r"os\.system"):
        _index(tmp_path / "evil.dat")  # asking to run code is refused whatever the name


# -- issue 15: stubs a pickle cannot change, bounded work, zip tricks, one-line errors ------


def _hostile(name: str):  # type: ignore[no-untyped-def]
    from tests.support import hostile_pickle

    return next(c for c in hostile_pickle.CASES if c.why == name)


@pytest.mark.parametrize(
    "why",
    ["pt BUILD gives a storage a negative item size", "pt BUILD gives a storage a zero item size",
     "pt BUILD rewrites a storage type"],
)  # fmt: skip
def test_build_cannot_change_a_storage_or_a_storage_type(tmp_path: Path, why: str) -> None:
    case = _hostile(why)
    path = tmp_path / case.name
    case.build(path)
    with pytest.raises(FormatError, match="BUILD"):
        _index(path)
    from tests.support.hostile_pickle import GOOD

    good = _torch_zip(tmp_path / "good.pt", GOOD, {"archive/data/0": b"\1" * 16})
    (entry,) = _index(good).tensors  # the allow-list's stubs are unchanged for the next file
    assert (entry.dtype, entry.end - entry.start) == ("F32", 16)


@pytest.mark.parametrize(
    ("why", "cause"),
    [("pt persistent id a DAG of 2**40 leaves", "persistent id"),
     ("pt DAG of 2**40 leaves as a dict key", "parts in all"),
     ("pt DAG of 2**40 leaves as a device", "torch.device"),
     ("pt 12M memo references", "over the limit"),
     ("pt sparse memo index", "memo index"),
     ("pt tensor key a huge int", "cannot be named")],
)  # fmt: skip
def test_small_pickles_cannot_make_huge_work(tmp_path: Path, why: str, cause: str) -> None:
    """Each of these took minutes or gigabytes: refused in seconds with a bounded memory."""
    import time
    import tracemalloc

    case = _hostile(why)
    path = tmp_path / case.name
    case.build(path)
    began = time.process_time()
    tracemalloc.start()
    with pytest.raises(FormatError, match=cause) as info:
        _index(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(path) in str(info.value)
    assert peak < 200 << 20, peak
    assert time.process_time() - began < 30  # tracemalloc makes it ~3x slower than the CLI


def test_a_deflated_pickle_is_refused_by_its_size_whatever_the_header_says(tmp_path: Path) -> None:
    body = b"\x80\x02" + b"]" * (40 << 20) + b"."
    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", body, compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(FormatError, match="over the limit"):
        _index(path)
    raw = bytearray(path.read_bytes())  # now lie about the size in both headers: 1 KB
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<I", raw, raw.find(sig) + at, 1024)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"CRC|damaged pickle"):
        _index(path)


@pytest.mark.parametrize(
    ("why", "cause"),
    [("pt data.pkl with a bad CRC", "fails its CRC check"),
     ("pt encrypted data.pkl", "is encrypted"),
     ("pt unknown compression method", "compression method 99"),
     ("pt two members share one local header", "local header"),
     ("pt lone surrogate tensor name", r"\\udc80 is not encodable as UTF-8")],
)  # fmt: skip
def test_zip_tricks_and_bad_names_are_one_line_errors(tmp_path: Path, why: str, cause: str) -> None:
    case = _hostile(why)
    path = tmp_path / case.name
    case.build(path)
    with pytest.raises(FormatError, match=cause):
        _index(path)


def test_a_storage_with_a_bad_crc_is_indexed_as_it_is(tmp_path: Path) -> None:
    """Storages are never read by zipfile: their bytes are stored and given back unchanged."""
    from tests.support import hostile_pickle

    case = next(c for c in hostile_pickle.LEGAL if "bad CRC" in c.why)
    path = tmp_path / case.name
    case.build(path)
    (entry,) = _index(path).tensors
    assert path.read_bytes()[entry.start : entry.end] == b"\1" * 16


def test_every_entry_is_validated(tmp_path: Path) -> None:
    """A contiguous tensor must span exactly numel * itemsize; sizes fit in 63 bits."""
    from tests.support.hostile_pickle import state, storage, tensor

    good = state(("w", tensor(storage(), shape=(4,), stride=(1,))))
    assert _index(_torch_zip(tmp_path / "ok.pt", good, {"archive/data/0": b"\0" * 16})).tensors
    wide = state(("w", tensor(storage(numel=2), shape=(2, 2), stride=(2, 1))))
    with pytest.raises(FormatError, match=r"past the end of its storage|shorter"):
        _index(_torch_zip(tmp_path / "wide.pt", wide, {"archive/data/0": b"\0" * 8}))
    huge = b"\x80\x02ctorch\nSize\n(\x8a\x09" + b"\0" * 8 + b"\x01tR."  # 2**64
    with pytest.raises(FormatError, match="2\\*\\*63"):
        _index(_torch_zip(tmp_path / "huge.pt", huge))


def test_a_real_100000_tensor_checkpoint_stays_within_the_limits(tmp_path: Path) -> None:
    """torch.save of 100,000 tensors (a 10 MB pickle, 3 M opcodes) indexes in bounds."""
    import subprocess
    import sys

    _torch()
    path = tmp_path / "big.pt"
    subprocess.run([sys.executable, "-c", "import sys, torch\n"
                    "torch.save({f'layers.{i}.w': torch.zeros(2) for i in range(100000)}, "
                    "sys.argv[1])", str(path)], check=True)  # fmt: skip
    index = _index(path)
    assert len(index.tensors) == 100_000
    assert index.tensors[0].end - index.tensors[0].start == 8


def test_a_checkpoint_zip_of_a_million_members_is_refused_by_its_count(tmp_path: Path) -> None:
    """Checked from the zip64 end record before zipfile builds a record per member (~500 MB)."""
    path = tmp_path / "m.pt"
    zip_flood(1_000_000)(path)
    with pytest.raises(FormatError, match="declares 1000000 members, over the limit of 131072"):
        _index(path)
