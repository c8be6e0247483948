"""A version's stored metadata, for real files of every format written by the real libraries,
equals the golden recorded before the format rules moved into each index (issue 16): moving
the rules changed where they live, not what a version stores.

Regenerate (only on purpose, and say why in the commit): ``MM_WRITE_GOLDEN=1 pytest this``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager.services import open_workspace
from modelmanager.services.importing import import_paths
from tests.support.builders import write_gguf, write_safetensors
from tests.support.hostile_folder import write_hdf5

GOLDEN = Path(__file__).parent / "golden" / "import_metadata.json"

CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "torch_dtype": "float32",
          "transformers_version": "4.44.0", "num_hidden_layers": 6, "hidden_size": 384,
          "vocab_size": 30522, "max_position_embeddings": 512,
          "num_parameters": 22713216}  # fmt: skip
CARD = "---\nlicense: apache-2.0\nbase_model:\n- org/base\ntags: [x]\n---\n# A card\n"


def _onnx(path: Path) -> None:
    """A real ONNX model with a fixed opset (the golden must not follow onnx's default)."""
    pytest.importorskip("onnx")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), name="W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
        initializer=[weight],
    )  # fmt: skip
    model = helper.make_model(graph, producer_name="golden", producer_version="1.0",
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.ir_version = 8
    onnx.save(model, str(path))


def _hf(root: Path) -> None:
    (root / "config.json").write_text(json.dumps(CONFIG))
    (root / "README.md").write_text(CARD)
    write_safetensors(root / "model.safetensors", {"w": np.ones((4, 8), np.float32)},
                      {"format": "pt"})  # fmt: skip


def _gguf_then_safetensors(root: Path) -> None:
    pytest.importorskip("gguf")
    write_gguf(root / "a.gguf", lambda w: w.add_file_type(7))
    write_safetensors(root / "b.safetensors", {"w": np.ones((2, 3), np.float32)}, {"format": "pt"})


def _gguf_with_config(root: Path) -> None:
    _gguf_then_safetensors(root)
    (root / "config.json").write_text(json.dumps({"architectures": ["Mine"], "n_layer": 2,
                                                  "n_embd": 8, "n_ctx": 64}))  # fmt: skip


def _nested_config(root: Path) -> None:
    """Only the folder's own config.json and README.md state facts, not a subfolder's."""
    (root / "sub").mkdir()
    (root / "sub" / "config.json").write_text(json.dumps(CONFIG))
    (root / "sub" / "README.md").write_text(CARD)
    write_safetensors(root / "w.safetensors", {"w": np.ones(5, np.float16)})


def _broken_config(root: Path) -> None:
    (root / "config.json").write_text('{"architectures": ["A"], "architectures": ["B"]}')
    (root / "README.md").write_text("# no front matter\nlicense: mit\n")
    np.save(root / "a.npy", np.zeros((3, 3), np.float32))


def _numpy(root: Path) -> None:
    np.save(root / "a.npy", np.zeros((3, 3), np.float32))
    np.savez(root / "b.npz", x=np.ones(4, np.int64), y=np.ones((2, 2), np.float64))


def _onnx_folder(root: Path) -> None:
    _onnx(root / "m.onnx")


def _keras(root: Path) -> None:
    pytest.importorskip("h5py")
    write_hdf5(root / "k.h5")
    import h5py

    with h5py.File(root / "plain.h5", "w") as h:
        h.create_dataset("x", data=np.zeros(4, np.float32))


def _generic(root: Path) -> None:
    (root / "notes.txt").write_text("hello")


CASES: dict[str, Callable[[Path], None]] = {
    "hf_folder": _hf, "gguf_then_safetensors": _gguf_then_safetensors,
    "gguf_with_config": _gguf_with_config, "nested_config": _nested_config,
    "broken_config": _broken_config, "numpy": _numpy, "onnx": _onnx_folder, "keras": _keras,
    "generic": _generic,
}  # fmt: skip


def _metadata(tmp_path: Path, case: str) -> dict[str, Any]:
    root = tmp_path / case
    root.mkdir()
    CASES[case](root)
    ws = open_workspace(tmp_path / "repo", create=True)
    meta = import_paths(ws, [root], "m").manifest.metadata
    assert ws.repo.read_manifest("m", 1).metadata == meta  # what was written, read back
    out: dict[str, Any] = json.loads(json.dumps(meta))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_stored_metadata_equals_the_golden(tmp_path: Path, case: str) -> None:
    meta = _metadata(tmp_path, case)
    golden: dict[str, Any] = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("MM_WRITE_GOLDEN"):
        golden[case] = meta
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(dict(sorted(golden.items())), indent=1) + "\n")
    assert meta == golden[case]
    assert list(meta) == list(golden[case])  # the manifest's bytes keep the keys' order


def test_the_golden_covers_every_case() -> None:
    """A case added without its golden fails here, not silently."""
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(CASES)
