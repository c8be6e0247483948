"""The window shows names and metadata from files as text: bidi, NEL, U+2028 and ESC appear as
escapes in the tree, the overview, the history and the tensor table; the data stays exact."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QModelIndex, Qt

from modelmanager.gui.jobs_bridge import DONE
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE
from modelmanager.gui.tensor_table import COLUMNS
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.gui.windows import shown_window
from tests.support.hostile_text import (
    ESCAPED_ARCH,
    ESCAPED_FILE,
    ESCAPED_MESSAGE,
    ESCAPED_TENSORS,
    FILE,
    MESSAGE,
    TENSORS,
    hostile_folder,
    raw_hidden,
)

DISPLAY, RAW, TIP = (
    Qt.ItemDataRole.DisplayRole,
    Qt.ItemDataRole.UserRole,
    Qt.ItemDataRole.ToolTipRole,
)


def test_a_version_with_hostile_names_is_shown_escaped(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    import_paths(ws, [hostile_folder(tmp_path / "one")], "evil", message=MESSAGE)
    import_paths(ws, [hostile_folder(tmp_path / "two", 2.0)], "evil", message="two")
    with shown_window(qtbot, ws) as win:
        flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
        matches = win.proxy.match(win.proxy.index(0, 0), REF_ROLE, "evil@1", 1, flags)
        assert matches
        # The tree: the version's message, escaped, in its text and its tooltip.
        assert ESCAPED_MESSAGE in matches[0].data(DISPLAY)
        assert ESCAPED_MESSAGE in matches[0].data(TIP)
        win.tree.setCurrentIndex(matches[0])
        qtbot.waitUntil(lambda: win.details is not None and win.details.manifest.ref == "evil@1")

        table = win.tensors_tab.tensor_model
        name_col, file_col = COLUMNS.index("Name"), COLUMNS.index("File")
        shown = sorted(table.index(r, name_col).data(DISPLAY) for r in range(table.rowCount()))
        assert shown == sorted(ESCAPED_TENSORS)
        assert {table.index(r, file_col).data(DISPLAY) for r in range(3)} == {ESCAPED_FILE}
        # Sorting, filtering and every other use see the exact names.
        assert {table.index(r, name_col).data(RAW) for r in range(3)} == set(TENSORS)
        assert {table.index(r, file_col).data(RAW) for r in range(3)} == {FILE}
        assert win.details is not None
        assert FILE in {f.path for f in win.details.manifest.files}

        assert win.overview_tab.ov["Architecture"].text() == ESCAPED_ARCH
        assert win.overview_tab.ov["Message"].text() == ESCAPED_MESSAGE
        assert win.overview_tab.ov["Message"].textFormat() == Qt.TextFormat.PlainText
        messages = [_cell(win, r, 4) for r in range(win.history.rowCount())]
        assert ESCAPED_MESSAGE in messages

        everything = [
            *(_texts(win.tree_model, QModelIndex())),
            *(table.index(r, c).data(DISPLAY) for r in range(3) for c in range(len(COLUMNS))),
            *(label.text() for label in win.overview_tab.ov.values()),
            *(_cell(win, r, c) for r in range(2) for c in range(5)),
        ]
        assert [t for t in everything if raw_hidden(str(t))] == []

        job = win.history.compare("evil@1", "evil@2")
        qtbot.waitUntil(lambda: job.state == DONE and hasattr(win.history, "diff_text"))
        assert raw_hidden(win.history.diff_text) == []
        assert ESCAPED_TENSORS[0] in win.history.diff_text


def _texts(model, parent: QModelIndex) -> list[str]:  # type: ignore[no-untyped-def]
    """Every DisplayRole and ToolTipRole text of a tree model, depth first."""
    out: list[str] = []
    for r in range(model.rowCount(parent)):
        for c in range(model.columnCount(parent)):
            index = model.index(r, c, parent)
            out += [str(index.data(role) or "") for role in (DISPLAY, TIP)]
        out += _texts(model, model.index(r, 0, parent))
    return out


def _cell(win: MainWindow, row: int, col: int) -> str:
    item = win.history.item(row, col)
    assert item is not None
    return item.text()
