"""qtmodeltester on every item model of the window, filled as a user's would be (issue 19).

The tree (repositories, models, versions, labels; stores on this workstation; a remote with a
pushed version), the search proxy over it, the tensor table (filtered and sorted), and the
models behind the window's tables (history, label moves, devices, jobs): each passes Qt's own
model checks, with the tree re-checked after a refresh, when rows are replaced under it.
qtmodeltester uses Qt's C++ QAbstractItemModelTester, which reports a broken model as a Qt
warning; qt_log_level_fail (pyproject.toml) turns that warning into a failed test (a model
whose parent() lies fails this way: tried while writing this).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QAbstractItemModel, Qt

from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace, devices
from modelmanager.services.history import set_label
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import add_remote, open_remote, push
from tests.gui.windows import select_ref, shown_window
from tests.services.test_stores import hf_cache, ollama_store
from tests.support.builders import hf_folder, small_model, write_safetensors


@pytest.fixture
def window(qtbot, ws: Workspace, tmp_path: Path, monkeypatch) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    tiny = hf_folder(tmp_path / "tiny", np.random.default_rng(1), shards=2)
    import_paths(ws, [tiny], "acme/tiny", message="base", labels=["prod"])
    import_paths(ws, [tiny], "acme/tiny", message="again")
    other = write_safetensors(tmp_path / "other" / "model.safetensors",
                              small_model(np.random.default_rng(2), n=3))  # fmt: skip
    import_paths(ws, [other], "lab/other", labels=["stable"])
    set_label(ws, "acme/tiny@2", "prod")  # a label moved: the label journal has rows
    devices.add_device(ws, tmp_path / "dev2", name="second")
    add_remote("shared", f"file://{tmp_path / 'shared'}")
    push(ws, "acme/tiny@1", open_remote("shared"))
    src = tmp_path / "store-src"
    src.mkdir()
    hf_cache(tmp_path / "hf", src)
    ollama_store(tmp_path / "ollama", src)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    with shown_window(qtbot, ws, ready=lambda w: bool(w.stores_view.listing)) as win:
        yield win


def _select(qtbot, win: MainWindow, ref: str) -> None:  # type: ignore[no-untyped-def]
    select_ref(qtbot, win, ref)
    qtbot.waitUntil(lambda: not win.runner.running())


def _rows(model: QAbstractItemModel) -> int:
    """Every row under the root, depth first (what the tester walked)."""

    def count(parent) -> int:  # type: ignore[no-untyped-def]
        n = model.rowCount(parent)
        return n + sum(count(model.index(r, 0, parent)) for r in range(n))

    return count(model.index(-1, -1))


def test_the_tree_and_its_search_proxy_pass_the_model_tester(  # type: ignore[no-untyped-def]
    qtbot, qtmodeltester, window: MainWindow
) -> None:
    assert _rows(window.tree_model) >= 12  # repository, 2 models, 3 versions, stores, remote
    qtmodeltester.check(window.tree_model)
    qtmodeltester.check(window.proxy)
    window.search.setText("tiny")  # the catalog answers in a job
    qtbot.waitUntil(lambda: window.proxy.text == "tiny" and not window.runner.running())
    assert 0 < _rows(window.proxy) < _rows(window.tree_model)
    qtmodeltester.check(window.proxy)
    window.search.setText("")
    window.tree.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(window.proxy)


def test_the_tree_stays_valid_across_a_refresh(  # type: ignore[no-untyped-def]
    qtbot, qtmodeltester, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    qtmodeltester.check(window.tree_model)  # the tester now watches every change
    more = write_safetensors(tmp_path / "more" / "model.safetensors",
                             small_model(np.random.default_rng(3), n=2))  # fmt: skip
    dialog = window.imports.open_dialog([more.parent])
    dialog.model.setCurrentText("lab/more")
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        dialog.accept()
    qtbot.waitUntil(lambda: "lab/more" in window.imports.existing_models())
    qtbot.waitUntil(lambda: not window.runner.running())
    qtmodeltester.check(window.tree_model)


def test_the_tensor_table_passes_filtered_and_sorted(  # type: ignore[no-untyped-def]
    qtbot, qtmodeltester, window: MainWindow
) -> None:
    _select(qtbot, window, "acme/tiny@2")
    table = window.tensors_tab.tensor_model
    assert table.rowCount() == 8
    qtmodeltester.check(table)
    window.tensors_tab.tensor_filter.setText("mlp")
    assert table.rowCount() == 2
    qtmodeltester.check(table)
    window.tensors_tab.tensor_filter.setText("")
    window.tensors_tab.tensor_view.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(table)


def test_the_tables_models_pass(qtbot, qtmodeltester, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    _select(qtbot, window, "acme/tiny@2")
    assert window.history.rowCount() == 2
    qtmodeltester.check(window.history.model())
    assert window.label_moves.rowCount() >= 1  # prod moved from @1 to @2
    qtmodeltester.check(window.label_moves.model())
    assert window.devices_tab.table.rowCount() == 2
    qtmodeltester.check(window.jobs_table.model())
    qtmodeltester.check(window.devices_tab.table.model())
