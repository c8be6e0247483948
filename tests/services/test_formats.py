"""Every format imports with its tensor index and exports byte for byte; mixed folders too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmanager.services import Workspace, history
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import stats
from tests.support.builders import hf_folder, tree_bytes


def _roundtrip(ws: Workspace, src: Path, tmp_path: Path, model: str) -> None:
    import_paths(ws, [src], model)
    export_ref(ws, model, tmp_path / f"out-{model}")
    assert tree_bytes(tmp_path / f"out-{model}") == tree_bytes(src)


def test_numpy_files_round_trip_with_their_index(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "np"
    src.mkdir()
    rng = np.random.default_rng(0)
    np.save(src / "a.npy", rng.standard_normal((64, 64)).astype(np.float32))
    np.save(src / "big_endian.npy", np.arange(1000, dtype=">i4"))
    np.savez(src / "stored.npz", w=rng.standard_normal(5000).astype(np.float16), b=np.ones(3))
    np.savez_compressed(src / "deflated.npz", w=np.zeros(100_000, np.float32))
    _roundtrip(ws, src, tmp_path, "np")
    m = ws.repo.resolve("np")
    formats = {f.path: f.format for f in m.files}
    assert formats == {"a.npy": "npy", "big_endian.npy": "npy", "stored.npz": "npz",
                       "deflated.npz": "npz"}  # fmt: skip
    assert m.parameters == 64 * 64 + 1000 + 5000 + 3 + 100_000


def test_torch_checkpoints_round_trip_and_unchanged_tensors_dedup(
    ws: Workspace, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch", reason="torch is a test-only dependency (torch==2.13.0)")
    g = torch.Generator().manual_seed(1)
    state = {f"layer.{i}.weight": torch.randn(128, 128, generator=g) for i in range(6)}
    src = tmp_path / "pt"
    src.mkdir()
    torch.save(state, src / "pytorch_model.bin")
    torch.save({"state_dict": state, "epoch": 1}, src / "legacy.ckpt",
               _use_new_zipfile_serialization=False)  # fmt: skip
    _roundtrip(ws, src, tmp_path, "pt")
    before = stats(ws).stored_bytes
    state["layer.3.weight"] = torch.randn(128, 128, generator=g)
    torch.save(state, src / "pytorch_model.bin")
    import_paths(ws, [src], "pt")
    growth = stats(ws).stored_bytes - before
    assert growth < 128 * 128 * 4 * 1.2, growth  # about one tensor, not the model
    d = history.diff_refs(ws, "pt@1", "pt@2")
    assert [t.name for t in d.tensors] == ["layer.3.weight"]


def test_hf_folder_with_both_safetensors_and_a_sharded_pytorch_bin(
    ws: Workspace, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch", reason="torch is a test-only dependency (torch==2.13.0)")
    src = hf_folder(tmp_path / "mixed", np.random.default_rng(2), shards=2)
    g = torch.Generator().manual_seed(2)
    for i in (1, 2):
        torch.save({f"shard{i}.w": torch.randn(32, 32, generator=g)},
                   src / f"pytorch_model-0000{i}-of-00002.bin")  # fmt: skip
    (src / "pytorch_model.bin.index.json").write_text('{"weight_map": {}}')
    _roundtrip(ws, src, tmp_path, "mixed")
    formats = {f.path: f.format for f in ws.repo.resolve("mixed").files}
    assert formats["pytorch_model-00001-of-00002.bin"] == "pytorch"
    assert formats["model-00001-of-00002.safetensors"] == "safetensors"


def test_a_refused_pickle_stores_nothing(ws: Workspace, tmp_path: Path) -> None:
    import zipfile

    src = tmp_path / "evil"
    src.mkdir()
    (src / "config.json").write_text("{}")
    with zipfile.ZipFile(src / "pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", b"cos\nsystem\n(S'touch pwned'\ntR.")
    before = tree_bytes(ws.repo.root)
    from modelmanager.errors import FormatError

    with pytest.raises(FormatError, match=r"os\.system"):
        import_paths(ws, [src], "evil")
    assert tree_bytes(ws.repo.root) == before
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()


def test_gguf_hdf5_and_onnx_with_external_data_round_trip(ws: Workspace, tmp_path: Path) -> None:
    from tests.core.test_sandboxed_formats import _gguf, _onnx_model

    h5py = pytest.importorskip("h5py")
    src = tmp_path / "mixed"
    src.mkdir()
    _gguf(src / "model.gguf")
    _onnx_model(src / "model.onnx", external=True)
    with h5py.File(src / "weights.h5", "w") as h:
        h.create_dataset("dense/kernel", data=np.ones((16, 16), np.float32))
    _roundtrip(ws, src, tmp_path, "mixed")
    m = ws.repo.resolve("mixed")
    formats = {f.path: f.format for f in m.files}
    assert formats == {"model.gguf": "gguf", "model.onnx": "onnx", "weights.data": "generic",
                       "weights.h5": "hdf5"}  # fmt: skip
    assert (m.metadata["architecture"], m.metadata["name"]) == ("llama", "tiny")
    gguf = next(f for f in m.files if f.path == "model.gguf")
    assert gguf.metadata["llama.context_length"] == "128"
