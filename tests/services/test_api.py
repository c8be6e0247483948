"""The Python API (modelmanager.load / open) on every indexed format, each file written by the
format's own library and each tensor compared with what that library reads back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import modelmanager as mm
from modelmanager.errors import (
    FormatError,
    IntegrityError,
    ModelManagerError,
    NotFoundError,
    UserError,
)
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, write_gguf

try:  # torch is optional for the API: the Qt-less CI venv has none, and numpy loads must work
    import torch
except ImportError:  # pragma: no cover - depends on the venv
    torch = None  # type: ignore[assignment]

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _src(tmp_path: Path) -> Path:
    """The folder the test's source files are written in (the repository is beside it)."""
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    return folder


def _stored(ws: Workspace, path: Path, model: str = "m") -> str:
    import_paths(ws, [path], model, labels=("prod",))
    return f"{model}@prod"


def _same(got: Any, want: Any) -> None:
    """Equal dtype, shape and bits (numpy or torch on both sides)."""
    if torch is not None and isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor)
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert torch.equal(got, want)
    else:
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.view(np.uint8), np.ascontiguousarray(want).view(np.uint8))


def _both(ref: str, ws: Workspace) -> tuple[dict[str, Any], dict[str, Any]]:
    """mm.load as numpy, and every tensor read one by one through mm.open, as numpy."""
    loaded = mm.load(ref, repo=ws.repo.root)
    with mm.open(ref, repo=ws.repo.root) as v:
        lazy = {name: v.tensor(name) for name in v}
    return loaded, lazy


@needs_torch
def test_safetensors_numpy_and_torch_match_the_library(ws: Workspace, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tmp_path = _src(tmp_path)
    rng = np.random.default_rng(1)
    tensors = {
        "w32": torch.from_numpy(random_weights(rng, (300, 70))),
        "w16": torch.from_numpy(random_weights(rng, (33, 5), "float16")),
        "wbf16": torch.randn(129, 257).to(torch.bfloat16),
        "steps": torch.arange(7, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
    }
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"hidden": 8}')
    ref = _stored(ws, tmp_path)
    want = load_file(str(tmp_path / "model.safetensors"))
    state = mm.load(ref, framework="torch", repo=ws.repo.root)
    assert set(state) == set(want)
    for name, tensor in want.items():
        _same(state[name], tensor)
    loaded, lazy = _both(ref, ws)
    assert loaded["wbf16"].dtype == ml_dtypes.bfloat16  # numpy has no bf16: ml_dtypes'
    for name, tensor in want.items():
        bits = tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor
        for got in (loaded[name], lazy[name]):
            np.testing.assert_array_equal(got.view(bits.numpy().dtype), bits.numpy())
            assert got.shape == tuple(tensor.shape)


@needs_torch
def test_pytorch_zip_and_legacy_with_views_come_back_as_torch_load_gives(
    ws: Workspace, tmp_path: Path
) -> None:
    base = torch.randn(6, 10)
    state = {
        "dense": torch.randn(17, 9),
        "transposed": base.t(),  # a non-contiguous view: strides (1, 10)
        "rows": base[2:4],  # a view at an offset into the same storage
        "half": torch.randn(5, 3).half(),
        "bf16": torch.randn(4, 4).bfloat16(),
        "ids": torch.arange(12, dtype=torch.int64).reshape(3, 4),
        "flags": torch.tensor([True, False]),
        "nested": {"scale": torch.tensor(2.5)},
    }
    folder = tmp_path / "pt"
    folder.mkdir()
    torch.save(state, folder / "model.pt")
    torch.save(state, folder / "legacy.bin", _use_new_zipfile_serialization=False)
    ref = _stored(ws, folder)
    for path in ("model.pt", "legacy.bin"):
        want = torch.load(folder / path, weights_only=True)
        flat = {**{k: v for k, v in want.items() if k != "nested"},
                "nested.scale": want["nested"]["scale"]}  # fmt: skip
        got = mm.load(ref, framework="torch", repo=ws.repo.root, files=[path])
        assert set(got) == set(flat)
        for name, tensor in flat.items():
            _same(got[name], tensor.contiguous())
    numpy_state = mm.load(ref, repo=ws.repo.root, files=["model.pt"])
    np.testing.assert_array_equal(numpy_state["transposed"], base.t().numpy())
    with mm.open(ref, repo=ws.repo.root, framework="torch") as v:
        _same(v.tensor("transposed"), base.t().contiguous())
        _same(v.tensor("rows"), base[2:4].contiguous())


def test_gguf_plain_types_load_and_a_quantized_one_is_named(ws: Workspace, tmp_path: Path) -> None:
    import gguf

    def extra(writer: Any) -> None:
        writer.add_tensor("f16", np.linspace(-1, 1, 48, dtype=np.float16).reshape(3, 16))
        writer.add_tensor("i32", np.arange(10, dtype=np.int32))

    path = write_gguf(tmp_path / "tiny.gguf", extra)
    ref = _stored(ws, path)
    reader = gguf.GGUFReader(str(path))
    want = {t.name: np.asarray(t.data) for t in reader.tensors}
    with pytest.raises(FormatError, match=r"blk\.0\.attn_q\.weight.*Q8_0") as caught:
        mm.load(ref, repo=ws.repo.root)
    assert "\n" not in str(caught.value)
    with mm.open(ref, repo=ws.repo.root) as v:
        for name in ("token_embd.weight", "f16", "i32"):
            _same(v.tensor(name), want[name])
        with pytest.raises(FormatError, match="Q8_0"):
            v.tensor("blk.0.attn_q.weight")


@needs_torch
def test_npy_and_npz_stored_fortran_and_deflated(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    c = random_weights(rng, (40, 30))
    f = np.asfortranarray(random_weights(rng, (20, 7), "float64"))
    big = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    folder = tmp_path / "np"
    folder.mkdir()
    np.save(folder / "c.npy", c)
    np.save(folder / "f.npy", f)
    np.savez(folder / "stored.npz", c=c, f=f, big=big)
    np.savez_compressed(folder / "packed.npz", c=c, f=f)
    ref = _stored(ws, folder)
    loaded = mm.load(ref, repo=ws.repo.root, files=["c.npy"])
    np.testing.assert_array_equal(loaded["array"], c)
    cases = [("f.npy", {"array": f})]
    cases += [(name, dict(np.load(folder / name))) for name in ("stored.npz", "packed.npz")]
    for path, want in cases:
        got = mm.load(ref, repo=ws.repo.root, files=[path])
        assert set(got) == set(want)
        for name, array in want.items():
            assert got[name].dtype == array.dtype
            assert got[name].shape == array.shape
            np.testing.assert_array_equal(got[name], array)
    torch_big = mm.load(ref, framework="torch", repo=ws.repo.root, files=["stored.npz"])["big"]
    assert torch.equal(torch_big, torch.from_numpy(big.astype("<i4")))  # swapped to native


def test_hdf5_contiguous_datasets_load_and_chunked_ones_are_named(
    ws: Workspace, tmp_path: Path
) -> None:
    import h5py

    rng = np.random.default_rng(3)
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as h:
        h.attrs["keras_version"] = "2.15.0"
        h.create_dataset("dense/kernel", data=random_weights(rng, (64, 32)))
        h.create_dataset("dense/bias", data=np.arange(32, dtype=np.int64))
        h.create_dataset("packed", data=random_weights(rng, (64, 64)), chunks=(8, 8),
                         compression="gzip")  # fmt: skip
    ref = _stored(ws, path)
    with h5py.File(path, "r") as h, mm.open(ref, repo=ws.repo.root) as v:
        assert set(v.keys()) == {"dense/kernel", "dense/bias", "packed"}
        for name in ("dense/kernel", "dense/bias"):
            _same(v.tensor(name), h[name][()])
        with pytest.raises(FormatError, match=r"'packed'.*not stored contiguously"):
            v.tensor("packed")


def test_onnx_initializers_raw_and_packed_load_and_varints_are_named(
    ws: Workspace, tmp_path: Path
) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    w = numpy_helper.from_array(random_weights(rng, (2, 3)), "W")  # raw_data
    half = numpy_helper.from_array(random_weights(rng, (4,), "float16"), "half")
    packed = helper.make_tensor("packed", TensorProto.FLOAT, [3], [1.5, -2.0, 3.25], raw=False)
    varints = helper.make_tensor("ids", TensorProto.INT64, [3], [1, 300, 7], raw=False)
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])],
        initializer=[w, half, packed, varints],
    )  # fmt: skip
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    ref = _stored(ws, path)
    with mm.open(ref, repo=ws.repo.root) as v:
        for proto in (w, half, packed):
            _same(v.tensor(proto.name), numpy_helper.to_array(proto))
        with pytest.raises(FormatError, match=r"'ids'.*varints"):
            v.tensor("ids")


def test_open_fetches_only_the_chunks_a_tensor_spans(ws: Workspace, tmp_path: Path) -> None:
    """Every piece of every other chunk is deleted: the tensor still reads, the others fail."""
    tmp_path = _src(tmp_path)
    rng = np.random.default_rng(5)
    tensors = {f"layer.{i}": random_weights(rng, (256, 256)) for i in range(6)}  # 256 KiB each
    from safetensors.numpy import save_file

    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"layers": 6}))
    ref = _stored(ws, tmp_path)
    manifest = ws.repo.resolve(ref)
    f = next(f for f in manifest.files if f.path == "model.safetensors")
    t = next(t for t in f.tensors if t.name == "layer.3")
    pos, keep = 0, set()
    for c in f.chunks:
        if pos < t.end and pos + c.length > t.start:
            keep.add(c.id)
        pos += c.length
    config = next(f for f in manifest.files if f.path == "config.json")
    keep |= {c.id for c in config.chunks}
    assert 0 < len(keep) < len(manifest.chunk_ids()) // 2
    for cid in manifest.chunk_ids() - keep:
        for _device, piece in ws.repo.chunks.piece_files(cid):
            Path(piece).unlink()
    with mm.open(ref, repo=ws.repo.root) as v:
        np.testing.assert_array_equal(v.tensor("layer.3"), tensors["layer.3"])
        assert json.loads(v.read("config.json")) == {"layers": 6}
        with pytest.raises(IntegrityError):
            v.tensor("layer.0")


def test_open_names_what_is_missing_and_gives_metadata_and_files(
    ws: Workspace, tmp_path: Path
) -> None:
    from safetensors.numpy import save_file

    tmp_path = _src(tmp_path)
    save_file({"a": np.ones(3, np.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"x": 1}')
    ref = _stored(ws, tmp_path)
    with mm.open(ref, repo=ws.repo.root) as v:
        assert v.keys() == ["a"]
        assert "a" in v
        assert v.ref == "m@1"
        assert v.metadata == ws.repo.resolve(ref).metadata
        assert v.read("config.json") == b'{"x": 1}'
        assert v.read("model.safetensors") == (tmp_path / "model.safetensors").read_bytes()
        with pytest.raises(KeyError) as missing:
            v.tensor("b")
        assert isinstance(missing.value, NotFoundError)
        assert str(missing.value) == "m@1 has no tensor 'b'"
        with pytest.raises(NotFoundError, match=r"no file 'nope\.json'"):
            v.read("nope.json")
    with pytest.raises(NotFoundError):
        mm.load("absent", repo=ws.repo.root)
    with pytest.raises(UserError, match="unknown framework 'jax'"):
        mm.load(ref, framework="jax", repo=ws.repo.root)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match=r"no file 'x\.bin'"):
        mm.load(ref, repo=ws.repo.root, files=["x.bin"])


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
                         capture_output=True, text=True, check=True, cwd=tmp_path,
                         env=subprocess_env(tmp_path))  # fmt: skip
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_is_cheap_and_a_numpy_load_never_imports_torch(
    ws: Workspace, tmp_path: Path
) -> None:
    from safetensors.numpy import save_file

    assert not {"numpy", "torch", "PySide6"} & _modules_after("import modelmanager", tmp_path)
    save_file({"a": np.ones(3, np.float32)}, str(_src(tmp_path) / "model.safetensors"))
    _stored(ws, _src(tmp_path) / "model.safetensors")
    code = (f"import modelmanager as mm\nassert mm.load('m', repo={str(ws.repo.root)!r})"
            "['a'].sum() == 3")  # fmt: skip
    loaded = _modules_after(code, tmp_path)
    assert "numpy" in loaded
    assert not {"torch", "PySide6"} & loaded


def test_errors_are_modelmanager_errors(ws: Workspace) -> None:
    with pytest.raises(ModelManagerError):
        mm.open("nothing@prod", repo=ws.repo.root)


def test_a_corrupt_chunk_is_refused_not_returned(ws: Workspace, tmp_path: Path) -> None:
    """Loading verifies every chunk against its hash: one flipped byte is an IntegrityError."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(6)
    save_file({"w": random_weights(rng, (128, 128))}, str(_src(tmp_path) / "model.safetensors"))
    ref = _stored(ws, _src(tmp_path) / "model.safetensors")
    # The chunk holding the tensor's bytes (the largest), not any chunk: chunk_ids() is a set,
    # and when its first was the 72-byte header chunk, mm.open rightly never read it.
    [f] = ws.repo.resolve(ref).files
    cid = max(f.chunks, key=lambda c: c.length).id
    for _device, piece in ws.repo.chunks.piece_files(cid):
        data = bytearray(Path(piece).read_bytes())
        data[len(data) // 2] ^= 0xFF
        Path(piece).write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        mm.load(ref, repo=ws.repo.root)
    with mm.open(ref, repo=ws.repo.root) as v, pytest.raises(IntegrityError):
        v.tensor("w")
