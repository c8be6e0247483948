"""The tree as a library: columns, sorting, the catalog's search, and a tree that stays as the
person arranged it across refreshes (issues 18 and 19), driven through the real widgets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QModelIndex, QStandardPaths, Qt

from modelmanager import paths
from modelmanager.core.catalog import catalog_path
from modelmanager.core.units import human_bytes
from modelmanager.gui.controllers.repositories import open_unsynced
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import (
    REF_ROLE,
    SIZE,
    SORT_BASE,
    TREE_COLUMNS,
    RepoTreeModel,
    dtype_mix,
)
from modelmanager.services import Workspace, history
from modelmanager.services.importing import import_paths
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder, write_gguf, write_safetensors

QStandardPaths.setTestModeEnabled(True)


def _hf(root: Path, arch: str, seed: int) -> Path:
    folder = hf_folder(root, np.random.default_rng(seed), shards=1)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = [arch]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def library(ws: Workspace, tmp_path: Path) -> Workspace:
    """Three models of different architectures, dtypes and version counts."""
    import_paths(ws, [_hf(tmp_path / "a", "LlamaForCausalLM", 1)], "acme/llama", message="base",
                 labels=["prod"])  # fmt: skip
    import_paths(ws, [_hf(tmp_path / "b", "LlamaForCausalLM", 2)], "acme/llama",
                 message="finetuned on bert data")  # fmt: skip
    half = {"w": np.ones((8, 8), dtype=np.float16)}
    import_paths(ws, [write_safetensors(tmp_path / "h.safetensors", half)], "zoo/half")
    import_paths(ws, [write_gguf(tmp_path / "q.gguf")], "gguf/quant", message="quantized")
    return ws


@pytest.fixture
def window(qtbot, library: Workspace) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, library) as win:
        yield win


def _row(win: MainWindow, ref: str) -> QModelIndex:
    flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
    found = win.proxy.match(win.proxy.index(0, 0), REF_ROLE, ref, 1, flags)
    return QModelIndex(found[0]) if found else QModelIndex()


def _cells(win: MainWindow, ref: str) -> dict[str, str]:
    index = _row(win, ref)
    return {name: index.siblingAtColumn(c).data() for c, name in enumerate(TREE_COLUMNS)}


def _names(win: MainWindow, parent: QModelIndex) -> list[str]:
    return [win.proxy.index(r, 0, parent).data() for r in range(win.proxy.rowCount(parent))]


def _search(qtbot, win: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    win.search.setText(text)
    qtbot.waitUntil(lambda: win.proxy.text == text.strip() and not win.runner.running())


def test_item_models_pass_the_model_tester(qtmodeltester, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtmodeltester.check(window.tree_model)
    qtmodeltester.check(window.proxy)
    window.proxy.search("llama", {str(window.ws.repo.root): frozenset({"acme/llama@1"})})
    qtmodeltester.check(window.proxy)
    qtmodeltester.check(window.tensors_tab.tensor_model)


def test_each_model_shows_its_figures_with_right_plurals(
    window: MainWindow, library: Workspace
) -> None:
    llama = _cells(window, "acme/llama")
    assert llama["Versions"] == "2 versions"
    assert llama["Architecture"] == "LlamaForCausalLM"
    assert llama["Dtypes"].startswith("F32") or llama["Dtypes"].lower().startswith("f32")
    assert llama["Labels"] == "prod"
    assert llama["Updated"][:2] == "20"
    half = _cells(window, "zoo/half")
    assert half["Versions"] == "1 version"
    assert half["Parameters"] == "64"
    assert half["Size"] == human_bytes(library.catalog.versions("zoo/half")[0].logical_bytes)
    assert half["Dtypes"].lower() == "f16"
    quant = _cells(window, "gguf/quant")
    assert "q8_0" in quant["Dtypes"].lower()
    assert "%" in quant["Dtypes"]
    version = _cells(window, "acme/llama@1")
    assert version["Labels"] == "prod"
    assert version["Versions"] == ""
    assert version["Architecture"] == "LlamaForCausalLM"
    repo_row = window.proxy.index(0, 0)
    assert repo_row.siblingAtColumn(1).data() == "3 models"
    assert dtype_mix({"f32": 30, "q4_k": 60, "f16": 10}) == "q4_k 60% · f32 30% …"
    assert dtype_mix({"F32": 1000, "I64": 1}) == "F32"  # a position table is no mix


def test_sorting_by_a_column_keeps_the_top_rows_and_version_order(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow
) -> None:
    root = window.proxy.index(0, 0)
    top = _names(window, QModelIndex())
    assert _names(window, root) == ["acme/llama", "gguf/quant", "zoo/half"]
    for order in (Qt.SortOrder.DescendingOrder, Qt.SortOrder.AscendingOrder):
        window.tree.sortByColumn(SIZE, order)
        sizes = [window.proxy.index(r, 0, root).data(SORT_BASE + SIZE)
                 for r in range(window.proxy.rowCount(root))]  # fmt: skip
        assert sizes == sorted(sizes, reverse=order == Qt.SortOrder.DescendingOrder)
        assert _names(window, QModelIndex()) == top  # repositories, stores, remotes stay
    window.tree.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    assert _names(window, root) == ["zoo/half", "gguf/quant", "acme/llama"]
    assert _names(window, QModelIndex()) == top
    llama = _row(window, "acme/llama")
    window.tree.expand(llama)  # its versions' rows are made when it is opened
    qtbot.waitUntil(lambda: window.proxy.rowCount(llama) == 2)
    assert [i.data(REF_ROLE) for i in (window.proxy.index(r, 0, llama) for r in range(2))] == [
        "acme/llama@2",
        "acme/llama@1",
    ]  # newest first, whichever way names sort


def test_search_uses_the_catalog_and_expands_what_it_finds(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, library: Workspace
) -> None:
    expected = {f"{v.model}@{v.seq}" for v in library.catalog.search("bert")}
    assert expected == {"acme/llama@2"}  # what `modelmanager search bert` prints
    llama = _row(window, "acme/llama")
    assert not window.tree.isExpanded(llama)
    _search(qtbot, window, "bert")
    llama = _row(window, "acme/llama")
    assert window.tree.isExpanded(llama)
    assert [window.proxy.index(r, 0, llama).data(REF_ROLE)
            for r in range(window.proxy.rowCount(llama))] == ["acme/llama@2"]  # fmt: skip
    assert not _row(window, "zoo/half").isValid()
    _search(qtbot, window, "llama")  # a model's name: every version of it stays visible
    assert window.proxy.rowCount(_row(window, "acme/llama")) == 2
    _search(qtbot, window, "prod")  # labels, as the command line's search
    assert _row(window, "acme/llama@1").isValid()
    assert not _row(window, "acme/llama@2").isValid()
    window.search.clear()
    qtbot.waitUntil(lambda: window.proxy.text == "")
    assert _row(window, "zoo/half").isValid()
    assert not window.tree.isExpanded(_row(window, "acme/llama"))  # as it was before


def test_refreshes_keep_expansion_selection_and_scroll(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, library: Workspace, tmp_path: Path
) -> None:
    window.tree.expand(_row(window, "acme/llama"))
    window.tree.setCurrentIndex(_row(window, "acme/llama@1"))
    qtbot.waitUntil(lambda: window.details is not None
                    and window.details.manifest.ref == "acme/llama@1")  # fmt: skip
    window.refresh_all()  # F5
    qtbot.waitUntil(lambda: not window.runner.running())
    assert window.tree.isExpanded(_row(window, "acme/llama"))
    assert window.tree.currentIndex() == _row(window, "acme/llama@1")
    # A job's Changes: an import of another model re-reads the tree.
    import_paths(library, [_hf(tmp_path / "c", "BertModel", 3)], "acme/bert")
    window.refresh()
    qtbot.waitUntil(lambda: _row(window, "acme/bert").isValid() and not window.runner.running())
    assert window.tree.isExpanded(_row(window, "acme/llama"))
    assert window.tree.currentIndex() == _row(window, "acme/llama@1")
    assert window.details is not None
    assert window.details.manifest.ref == "acme/llama@1"


def test_history_follows_a_removal_and_a_label_move(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.tree.expand(_row(window, "acme/llama"))
    window.tree.setCurrentIndex(_row(window, "acme/llama@2"))
    qtbot.waitUntil(lambda: window.history.rowCount() == 2)
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        window.history.move_label("acme/llama@2", "prod")
    qtbot.waitUntil(lambda: _history_labels(window)[0] == "prod" and not window.runner.running())
    assert window.label_moves.rowCount() >= 2
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        window.cleanup.remove(["acme/llama@2"])  # the shown version
    qtbot.waitUntil(lambda: window.history.rowCount() == 1 and not window.runner.running())
    assert [window.history.item(0, 0).text()] == ["@1"]  # type: ignore[union-attr]
    assert window.history.shown_model == "acme/llama"
    assert not _row(window, "acme/llama@2").isValid()


def _history_labels(win: MainWindow) -> list[str]:
    items = (win.history.item(r, 2) for r in range(win.history.rowCount()))
    return [item.text() if item is not None else "" for item in items]


def test_the_window_appears_before_a_lost_catalog_is_rebuilt(qtbot, library: Workspace) -> None:  # type: ignore[no-untyped-def]
    root = library.repo.root
    catalog = catalog_path(paths.cache_dir(), library.repo)
    library.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)
    ws = open_unsynced(root)  # what `modelmanager gui` does: no manifest read here
    try:
        assert history.list_models(ws) == []
        win = MainWindow(ws, remember=False)
        win.ask_before_close = False
        qtbot.addWidget(win)
        win.show()

        def titles() -> list[str]:
            return [j.title for j in win.runner.jobs.values()]

        # the tree is read first (what the catalog has: nothing), the rest after it
        assert "Read the catalog" in titles()
        assert not {"Read devices", f"Read the catalog of {root.name}"} & set(titles())
        qtbot.waitUntil(lambda: f"Read the catalog of {root.name}" in titles())  # the rebuild
        assert "Read devices" in titles()  # started with it, once the tree was listed
        qtbot.waitUntil(lambda: _row(win, "acme/llama").isValid() and not win.runner.running())
        assert win.devices_tab.table.rowCount() == len(ws.repo.devices.devices)
        assert len(history.list_models(ws)) == 3
        win.runner.cancel_all_and_wait()
    finally:
        ws.close()


def test_a_large_tree_fills_and_sorts(qtbot) -> None:  # type: ignore[no-untyped-def]
    """500 models x 3 versions through the tree model and the proxy (a smoke check of the
    sorting path that does no Python work per comparison)."""
    from modelmanager.core.catalog import ModelRow, VersionRow
    from modelmanager.gui.library import LibraryProxy

    models = [ModelRow(f"m{i:04d}", 3, 3, "2026-01-01", i * 7 % 500, i, {}, "A", '{"f32": 4}')
              for i in range(500)]  # fmt: skip
    versions: dict[str, list[Any]] = {
        m.name: [VersionRow(m.name, s, None, "2026", "", "{}", 1, 1, 1, s, {"f32": 4}, ())
                 for s in (3, 2, 1)] for m in models
    }  # fmt: skip
    tree = RepoTreeModel()
    tree.populate("/r", "r", models, versions)
    proxy = LibraryProxy()
    proxy.setSourceModel(tree)
    proxy.sort(SIZE, Qt.SortOrder.DescendingOrder)
    root = proxy.index(0, 0)
    sizes = [proxy.index(r, 0, root).data(SORT_BASE + SIZE) for r in range(500)]
    assert sizes == sorted(sizes, reverse=True)
    assert proxy.rowCount() == 3  # the repository, the stores' place, the remotes' place


def test_a_re_read_keeps_the_scroll_position_expansion_and_current_row(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Rows replaced under the view (what every refresh does) come back as arranged."""
    from PySide6.QtWidgets import QTreeView

    from modelmanager.core.catalog import ModelRow, VersionRow
    from modelmanager.gui.library import LibraryProxy, TreeState
    from modelmanager.gui.models import repository_rows

    models = [ModelRow(f"m{i:03d}", 2, 2, "2026", i, i, {}, "A") for i in range(200)]
    versions: dict[str, list[Any]] = {
        m.name: [VersionRow(m.name, s, None, "2026", "", "{}", 1, 1, 1, s, {}, ()) for s in (2, 1)]
        for m in models
    }
    tree = RepoTreeModel()
    tree.populate("/r", "r", models, versions)
    proxy = LibraryProxy()
    proxy.setSourceModel(tree)
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.resize(400, 300)
    view.show()
    view.expandToDepth(0)
    flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
    view.expand(proxy.match(proxy.index(0, 0), REF_ROLE, "m150", 1, flags)[0])
    view.setCurrentIndex(proxy.match(proxy.index(0, 0), REF_ROLE, "m150@1", 1, flags)[0])
    view.scrollTo(view.currentIndex())
    scroll = view.verticalScrollBar().value()
    assert scroll > 0
    state = TreeState(view)
    tree.place("/r", repository_rows("/r", "r", models, versions))  # a re-read
    assert view.verticalScrollBar().value() != scroll or not view.isExpanded(
        proxy.match(proxy.index(0, 0), REF_ROLE, "m150", 1, flags)[0]
    )  # without the state, the tree collapsed and lost its place
    state.restore()
    assert view.isExpanded(proxy.match(proxy.index(0, 0), REF_ROLE, "m150", 1, flags)[0])
    assert view.currentIndex().data(REF_ROLE) == "m150@1"
    assert view.verticalScrollBar().value() == scroll
