"""Issue 21's ONNX graph (inputs, outputs, operator counts, read without running the model) and
Keras HDF5 layer tree, on real files written by onnx and h5py and imported for real."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from modelmanager.core.analysis.structure import Port, structure
from modelmanager.core.formats import index_file
from modelmanager.core.formats.base import MAX_META_VALUE
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.support.graph_models import KERAS_LAYERS, write_keras_h5, write_onnx_graph

OPERATORS = (("MatMul", 2), ("Cast", 1), ("Greater", 1), ("Identity", 1), ("If", 1),
             ("Mul", 1), ("Not", 1), ("ReduceMax", 1), ("Relu", 1), ("Unsqueeze", 1),
             ("com.example:Fancy", 1))  # fmt: skip


def test_an_onnx_graph_gives_inputs_outputs_and_operator_counts(
    ws: Workspace, tmp_path: Path
) -> None:
    """Symbolic dims kept by name; an initializer listed as an input is not an input; the If
    branches' nodes are counted; a custom domain's operator is named with its domain."""
    pytest.importorskip("onnx")
    m = import_paths(ws, [write_onnx_graph(tmp_path / "m.onnx")], "g").manifest
    (g,) = structure(m).graphs
    assert g.file == "m.onnx"
    assert g.inputs == (Port("input_ids", "I64", ("batch", "seq")),
                        Port("mask", "F32", ("batch", "seq")))  # fmt: skip
    assert g.outputs == (Port("logits", "F32", ("batch", "seq", 4)), Port("flag", "BOOL", ()),
                         Port("fancy", "F32", ("batch", "seq", 4)))  # fmt: skip
    assert g.operators == OPERATORS
    assert (g.inputs_total, g.outputs_total, g.nodes) == (2, 3, 12)
    assert g.inputs[0].text == "input_ids I64 [batch x seq]"
    doc = structure(m).to_json()["graphs"][0]
    assert doc["operators"]["MatMul"] == 2
    assert doc["inputs"][1] == {"name": "mask", "dtype": "F32", "shape": ["batch", "seq"]}


def test_a_graph_of_many_inputs_keeps_valid_json_and_counts_them_all(tmp_path: Path) -> None:
    """602 inputs do not fit one metadata value: the summary keeps what fits, as valid JSON
    (cut at the cap it would not parse and the graph would be lost), and says 602."""
    pytest.importorskip("onnx")
    path = write_onnx_graph(tmp_path / "wide.onnx", extra_inputs=600)
    meta = index_file(path, path.stat().st_size).metadata
    assert len(meta["graph.inputs"]) <= MAX_META_VALUE
    doc = json.loads(meta["graph.inputs"])
    assert doc["total"] == 602
    assert 100 < len(doc["items"]) < 602
    assert doc["items"][2] == ["X0", "F32", [1]]


def test_a_malformed_graph_summary_in_a_manifest_is_left_out(ws: Workspace, tmp_path: Path) -> None:
    """A manifest is read from a repository or a remote: a summary that is not what an index
    writes costs the graph, never the structure view."""
    pytest.importorskip("onnx")
    m = import_paths(ws, [write_onnx_graph(tmp_path / "m.onnx")], "g").manifest
    for bad in ("[", "[1]", '{"total": 1, "items": [["x", "F32", [-1]]]}',
                '{"total": 0, "items": [["x", "F32", [1]]]}', "[" * 5000):  # fmt: skip
        f = replace(m.files[0], metadata={**m.files[0].metadata, "graph.inputs": bad})
        s = structure(replace(m, files=(f,)))
        assert s.graphs == ()
        assert s.parameters == m.parameters


def test_a_keras_file_gives_its_layers_in_model_order_weightless_ones_included(
    ws: Workspace, tmp_path: Path
) -> None:
    """The layer groups are module nodes in the model's order (layer_names), not the order
    their data lies in the file; input_1 and dropout hold no weights and still appear."""
    pytest.importorskip("h5py")
    m = import_paths(ws, [write_keras_h5(tmp_path / "k.h5")], "k").manifest
    s = structure(m)
    (weights,) = s.root.children
    assert weights.name == "model_weights"
    assert [c.name for c in weights.children] == list(KERAS_LAYERS)
    assert [c.parameters for c in weights.children] == [0, 4 * 8 + 8, 0, 8 * 2 + 2]
    assert s.parameters == m.parameters == 58
    assert s.facts == (("k.h5", {"Keras version": "2.15.0", "backend": "tensorflow",
                                 "layers": "4"}),)  # fmt: skip


def test_an_exported_encoder_folds_its_blocks_and_adds_up(ws: Workspace, tmp_path: Path) -> None:
    """A BERT-shaped ONNX export: initializers named as Hugging Face's fold into one run of
    six blocks; the graph counts every node the builder wrote."""
    pytest.importorskip("onnx")
    from tests.support.graph_models import write_bert_onnx

    m = import_paths(ws, [write_bert_onnx(tmp_path / "model.onnx")], "bert").manifest
    s = structure(m)
    assert [p for p, _n in s.runs()] == ["encoder.layer.0-5 x 6"]
    assert s.parameters == m.parameters == sum(s.shares.values())
    (g,) = s.graphs
    assert [p.name for p in g.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert g.outputs[0] == Port("last_hidden_state", "F32", ("batch", "sequence", 32))
    assert dict(g.operators)["Softmax"] == 6
    assert g.nodes == sum(n for _op, n in g.operators) == 222


def test_deeply_nested_subgraphs_are_all_counted(tmp_path: Path) -> None:
    """An If inside an If, 20 deep: every level's nodes are counted (a recursion cap would
    have refused the whole file)."""
    pytest.importorskip("onnx")
    import onnx
    from onnx import TensorProto, helper

    def out(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.BOOL, [])

    def leaf(name: str) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node("Not", ["c"], [name])], name, [], [out(name)])

    body = leaf("o0")
    for level in range(1, 20):
        body = helper.make_graph(
            [helper.make_node("If", ["c"], [f"o{level}"], then_branch=body,
                              else_branch=leaf(f"e{level}"))],
            f"b{level}", [], [out(f"o{level}")],
        )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=leaf("e20"))], "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [])], [out("y")],
    )  # fmt: skip
    path = tmp_path / "deep.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    doc = json.loads(index_file(path, path.stat().st_size).metadata["graph.operators"])
    assert dict(doc["items"]) == {"If": 20, "Not": 21}  # a Not in each else and at the bottom
