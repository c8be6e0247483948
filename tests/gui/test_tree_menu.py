"""The tree's context menu: what each kind of row offers, and that its actions do the work.

Built through ``MainWindow.tree_menu`` (what a right-click pops up) on real rows of the tree;
the actions are the same controllers the menu bar drives, checked here through the
repository afterwards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QGuiApplication

from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE, REMOTES
from modelmanager.gui.remote_dialog import FOLDER
from modelmanager.services import Workspace
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.pin_records import pin_key, pins
from modelmanager.services.remotes import list_remotes
from tests.gui.windows import shown_window
from tests.support.builders import write_safetensors


def _row(win: MainWindow, role: int, value: str) -> QModelIndex:
    flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
    found = win.proxy.match(win.proxy.index(0, 0), role, value, 1, flags)
    assert found, value
    return found[0]


def _texts(win: MainWindow, index: QModelIndex) -> list[str]:
    return [a.text() for a in win.tree_menu(index).actions() if a.text()]


@pytest.fixture
def two_versions(ws: Workspace, tmp_path: Path) -> Workspace:
    for seq in (1, 2):
        src = tmp_path / f"v{seq}" / "model.safetensors"
        write_safetensors(src, {"w": np.full((64, 64), seq, np.float32)})
        import_paths(ws, [src.parent], "acme/tiny")
    return ws


def test_version_model_and_remote_rows_offer_their_actions(
    qtbot, two_versions: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, two_versions) as win:
        version = _row(win, REF_ROLE, "acme/tiny@2")
        assert _texts(win, version) == [
            "Export…", "Verify", "Copy reference", "Label…", "Diff with…", "Mount…",
            "Pin &hot", "Unpin", "Push acme/tiny@2 to",
            "Remove acme/tiny@2…",
        ]  # fmt: skip
        model = _row(win, REF_ROLE, "acme/tiny")
        assert _texts(win, model) == [
            "Redundancy policy…", "Codec…", "Recompress…", "Remove all versions of acme/tiny…",
        ]  # fmt: skip
        # A row's other columns open the same menu as its name.
        assert _texts(win, model.siblingAtColumn(3)) == _texts(win, model)
        assert _texts(win, QModelIndex()) == []

        copy = next(a for a in win.tree_menu(version).actions() if a.text() == "Copy reference")
        copy.trigger()
        assert QGuiApplication.clipboard().text() == "acme/tiny@2"

        remotes_row = _row(win, Qt.ItemDataRole.DisplayRole, REMOTES)
        assert _texts(win, remotes_row) == ["Add remote…", "Refresh remotes"]
        add = next(a for a in win.tree_menu(remotes_row).actions() if a.text() == "Add remote…")
        add.trigger()
        dialog = win.remotes.dialog
        assert dialog is not None
        assert dialog.isVisible()
        qtbot.keyClicks(dialog.name, "nas")
        dialog.kind.setCurrentIndex(FOLDER)
        qtbot.keyClicks(dialog.folder, str(tmp_path / "shared"))
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)  # fmt: skip
        assert not dialog.isVisible(), dialog.error.text()
        assert [r.name for r in list_remotes()] == ["nas"]


def test_remove_all_versions_from_the_tree_previews_then_removes_the_model(
    qtbot, two_versions: Workspace
) -> None:  # type: ignore[no-untyped-def]
    ws = two_versions
    with shown_window(qtbot, ws) as win:
        menu = win.tree_menu(_row(win, REF_ROLE, "acme/tiny"))
        next(a for a in menu.actions() if a.text().startswith("Remove all versions")).trigger()
        qtbot.waitUntil(lambda: win.cleanup.box is not None and win.cleanup.box.isVisible())
        box = win.cleanup.box
        assert box is not None
        assert "Remove acme/tiny@1, acme/tiny@2?" in box.text()
        assert ws.repo.model_names() == ["acme/tiny"]  # the preview removed nothing
        next(b for b in box.buttons() if b.text() == "Remove").click()
        qtbot.waitUntil(lambda: not ws.catalog.versions("acme/tiny"), timeout=20_000)
    assert ws.repo.model_names() == []


def test_pin_hot_from_a_version_row_shows_the_pin_and_unpins(
    qtbot, two_versions: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ws = two_versions
    set_device(ws, "main", tier="cold")
    add_device(ws, tmp_path / "fast", name="fast", tier="hot")
    with shown_window(qtbot, ws) as win:
        row = _row(win, REF_ROLE, "acme/tiny@1")
        menu = win.tree_menu(row)
        next(a for a in menu.actions() if a.text() == "Pin &hot").trigger()
        qtbot.waitUntil(lambda: [p.ref for p in pins(ws.repo)] == ["acme/tiny@1"], timeout=30_000)
        hot = {p.name for p in (tmp_path / "fast" / "hot").rglob("*") if p.is_file()}
        assert hot == ws.repo.resolve("acme/tiny@1").chunk_ids()
        qtbot.waitUntil(lambda: not win.runner.running())
        menu = win.tree_menu(row)  # a new menu: the row's pin is read as it is built
        pinned = next(a for a in menu.actions() if a.text().startswith("Pinned &hot (since"))
        assert pinned.isChecked()
        unpin = next(a for a in menu.actions() if a.text() == "Unpin")
        qtbot.waitUntil(unpin.isEnabled)
        unpin.trigger()
        qtbot.waitUntil(lambda: not pins(ws.repo), timeout=30_000)
    assert ws.repo.records.read(pin_key("acme/tiny", 1))["pinned"] is False
