"""Every keyboard shortcut of the window is in a menu bar menu, once, and no two actions share
one (an ambiguous key does nothing in Qt); the Version and Model menus hold every action."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder


@pytest.fixture
def window(qtbot, ws: Workspace, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    import_paths(ws, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    with shown_window(qtbot, ws) as win:
        yield win


def _menus(win: MainWindow) -> dict[str, list[QAction]]:
    return {top.text().replace("&", ""): menu_actions(top.menu())  # type: ignore[arg-type]
            for top in win.menuBar().actions() if isinstance(top.menu(), QMenu)}  # fmt: skip


def test_each_shortcut_is_in_one_menu_and_unambiguous(window: MainWindow) -> None:
    in_menus = [a for actions in _menus(window).values() for a in actions]
    keyed = [a for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert {id(a) for a in keyed} <= {id(a) for a in in_menus}
    keys = [a.shortcut().toString() for a in keyed]
    assert len(keys) == len(set(keys)), sorted(keys)
    refresh = QKeySequence(QKeySequence.StandardKey.Refresh).toString()  # F5
    assert {"Ctrl+I", "Ctrl+B", "Ctrl+F", "Ctrl+D", "Ctrl+E", "Ctrl+L", refresh} <= set(keys)


def test_version_and_model_menus_hold_every_action(window: MainWindow) -> None:
    menus = {name: [a.text().replace("&", "") for a in acts]
             for name, acts in _menus(window).items()}  # fmt: skip
    assert {"Export…", "Verify", "Diff with…", "Copy reference", "Label…", "Push to…",
            "Remove…"} <= set(menus["Version"])  # fmt: skip
    assert menus["Model"] == ["Redundancy policy…", "Codec…", "Recompress…",
                              "Remove all versions…"]  # fmt: skip
    assert {"Verify (quick)", "Verify (full)", "Scrub", "Repair", "Rebalance…",
            "Free unused space…"} <= set(menus["Maintenance"])  # fmt: skip
