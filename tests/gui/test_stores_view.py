"""The tree's "Models on this workstation": stores listed, a model adopted, duplicates shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import FIXED_ROWS, STORE_ROLE
from modelmanager.services import Workspace
from modelmanager.services.exporting import export_ref
from tests.gui.windows import shown_window
from tests.services.test_stores import REV2, hf_cache, ollama_store
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
    with qtbot.waitSignal(window.runner.succeeded, timeout=60_000):
        window.stores_view.adopt(store, models[0], "tiny")
    qtbot.waitUntil(
        lambda: "tiny" in window.imports.existing_models() and not window.runner.running()
    )
    export_ref(ws, "tiny@1", tmp_path / "out")
    assert tree_bytes(tmp_path / "out")["model.gguf"] == models[0].files[1].path.read_bytes()
    assert "identical to the originals" in window.statusBar().currentMessage()
    assert models[0].files[1].path.exists()  # the original stays

    window.stores_view.find_duplicates()
    qtbot.waitUntil(lambda: getattr(window.stores_view, "duplicates_box", None) is not None)
    details = window.stores_view.duplicates_box.detailedText()
    assert "Ollama: tiny:latest / model.gguf" in details
    assert "repo repo: tiny@1 / model.gguf" in details
    window.stores_view.duplicates_box.close()


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
