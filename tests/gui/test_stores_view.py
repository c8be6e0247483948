"""The tree's "Models on this workstation": stores listed, a model adopted, duplicates shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QMenu, QMessageBox

from modelmanager.core.units import human_bytes
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import FIXED_ROWS, STORE_ROLE
from modelmanager.services import Workspace
from modelmanager.services.exporting import export_ref
from tests.gui.windows import shown_window
from tests.services.test_stores import REV1, REV2, hf_cache, ollama_store
from tests.support.builders import tree_bytes


@pytest.fixture
def window(qtbot, ws: Workspace, tmp_path: Path, monkeypatch) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    src.mkdir()
    hf_cache(tmp_path / "hf", src)
    ollama_store(tmp_path / "ollama", src)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    with shown_window(qtbot, ws, ready=lambda w: bool(w.stores_view.listing)) as win:
        yield win


def _said(win: MainWindow) -> list[str]:
    """Every message the status line shows from now on (the Jobs tab rewrites it as jobs
    start and end, so the last one is not always the one to check)."""
    said: list[str] = []
    win.statusBar().messageChanged.connect(said.append)
    return said


def _store_rows(win: MainWindow) -> dict[str, list[str]]:
    model = win.tree_model
    place = model.item(model.rowCount() - FIXED_ROWS, 0)
    out = {}
    for r in range(place.rowCount()):
        store = place.child(r, 0)
        out[store.text().split("  (")[0]] = [store.child(i, 0).text()
                                             for i in range(store.rowCount())]  # fmt: skip
    return out


def test_stores_appear_in_the_tree_and_a_model_is_adopted(
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rows = _store_rows(window)
    assert rows["Ollama"] == ["tiny:latest", "tiny:q8"]
    assert rows["Hugging Face cache"][1] == f"acme/tiny@{REV2[:10]}  [main]"
    assert window.stack.currentIndex() == 1  # an empty repository, but models to show
    window.grab().save(str(tmp_path / "stores.png"))  # looked at while building this

    store, models = next(x for x in window.stores_view.listing if x[0].kind == "ollama")
    root = str(store.root)
    assert window.stores_view.find(root, "tiny:latest") == (store, models[0])
    said = _said(window)
    with qtbot.waitSignal(window.runner.succeeded, timeout=60_000):
        window.stores_view.adopt(store, models[0], "tiny")
    qtbot.waitUntil(
        lambda: "tiny" in window.imports.existing_models() and not window.runner.running()
    )
    export_ref(ws, "tiny@1", tmp_path / "out")
    assert tree_bytes(tmp_path / "out")["model.gguf"] == models[0].files[1].path.read_bytes()
    assert any("identical to the originals" in m for m in said)
    assert models[0].files[1].path.exists()  # the original stays

    window.stores_view.find_duplicates()
    qtbot.waitUntil(lambda: window.stores_view.duplicates_box is not None)
    box = window.stores_view.duplicates_box
    assert box is not None
    rows = box.rows()
    size = models[0].files[1].size
    # The group's row: its size, 2 copies, and the bytes keeping one frees; its copies below.
    assert rows[0][:3] == (human_bytes(size), "2", human_bytes(size))
    assert rows[1:3] == [("Ollama: tiny:latest / model.gguf",), ("repo repo: tiny@1 / model.gguf",)]
    total = sum(g.freeable for g in window.stores_view.last_duplicates)
    assert box.total.text().endswith(f"frees {human_bytes(total)} in total.")
    box.close()


def test_each_store_model_item_knows_its_store_and_ref(window: MainWindow) -> None:
    model = window.tree_model
    place = model.item(model.rowCount() - FIXED_ROWS, 0)
    store_item = place.child(0, 0)
    roots_refs = [store_item.child(i, 0).data(STORE_ROLE) for i in range(store_item.rowCount())]
    assert roots_refs  # the loop below must have something to check
    for root, ref in roots_refs:
        assert window.stores_view.find(root, ref) is not None


def test_selecting_a_store_model_shows_its_tensors_from_the_headers(
    qtbot, window: MainWindow
) -> None:  # type: ignore[no-untyped-def]
    assert window.tabs.tabText(2) == "Tensors"
    store, _models = next(x for x in window.stores_view.listing if x[0].kind == "ollama")
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        window.stores_view.show_model(str(store.root), "tiny:latest")
    qtbot.waitUntil(lambda: window.tensors_tab.tensor_model.rowCount() == 2)
    assert window.tabs.currentIndex() == 2
    names = {window.tensors_tab.tensor_model.index(r, 0).data() for r in range(2)}
    assert names == {"blk.0.attn_q.weight", "blk.0.ffn_up.weight"}
    assert "2 tensors from the headers of 1 weight file" in window.statusBar().currentMessage()


class UrlCatcher(QObject):
    """The desktop's handler for file:// URLs while a test runs: records what was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


@pytest.fixture
def opened() -> Iterator[list[QUrl]]:
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    yield catcher.urls
    QDesktopServices.unsetUrlHandler("file")


def _menu(win: MainWindow, root: str, ref: str | None) -> dict[str, QAction]:
    menu = QMenu(win)
    win.stores_view.add_actions(menu, root, ref)
    win._keep_menu = menu  # type: ignore[attr-defined]  # alive while its actions are used
    return {a.text(): a for a in menu.actions() if a.text()}


def test_show_in_folder_opens_the_model_s_folder_and_the_store_s(
    window: MainWindow, tmp_path: Path, opened: list[QUrl]
) -> None:
    store = next(s for s, _m in window.stores_view.listing if s.kind == "huggingface")
    _menu(window, str(store.root), f"acme/tiny@{REV2}")["Show in folder"].trigger()
    _menu(window, str(store.root), None)["Show in folder"].trigger()
    snapshot = tmp_path / "hf" / "models--acme--tiny" / "snapshots" / REV2
    assert [u.toLocalFile() for u in opened] == [str(snapshot), str(tmp_path / "hf")]
    assert all(u.scheme() == "file" for u in opened)


def test_deleting_a_store_model_previews_paths_and_bytes_and_keeps_shared_files(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store, models = next(x for x in window.stores_view.listing if x[0].kind == "huggingface")
    old = next(m for m in models if m.revision == REV1)
    weights = next(f for f in old.files if f.name == "model.safetensors")
    config = next(f for f in old.files if f.name == "config.json")
    blob, shared = weights.path.resolve(), config.path.resolve()
    actions = _menu(window, str(store.root), old.ref)
    actions["Delete from Hugging Face cache…"].trigger()
    box = window.stores_view.delete_box
    assert box is not None
    assert box.text().startswith(f"Delete acme/tiny@{REV1[:12]} from Hugging Face cache: 3 paths, "
                                 f"{human_bytes(weights.size)} freed. 1 file another model "
                                 "uses will stay.")  # fmt: skip
    details = box.detailedText().splitlines()
    assert f"{human_bytes(weights.size)}  {blob}" in details
    assert f"kept (another model uses it): {shared}" in details
    box.button(QMessageBox.StandardButton.Cancel).click()  # nothing happens on Cancel
    assert blob.exists()

    window.stores_view.ask_delete(store, old)
    box = window.stores_view.delete_box
    go = next(b for b in box.buttons() if b.text() == "Delete")
    said = _said(window)
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        go.click()
    assert not blob.exists()
    assert not weights.path.parent.exists()  # the snapshot folder it left empty
    assert shared.exists()  # the newer revision still uses it
    assert any(f"freed {human_bytes(weights.size)}" in m for m in said)
    qtbot.waitUntil(lambda: not window.runner.running())
    assert _store_rows(window)["Hugging Face cache"] == [f"acme/tiny@{REV2[:10]}  [main]"]
