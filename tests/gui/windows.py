"""The main window as every GUI test opens it: shown, idle, and stopped cleanly at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PySide6.QtCore import QModelIndex, Qt

from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE
from modelmanager.services import Workspace


def _listed(win: MainWindow) -> bool:
    return win.tree_model.rowCount() > 0


@contextmanager
def shown_window(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, ready: Callable[[MainWindow], bool] = _listed, tab: int | None = None
) -> Iterator[MainWindow]:
    """A window on ``ws`` that touches no user settings, once ``ready`` and no job runs."""
    win = MainWindow(ws, remember=False)
    # pytest-qt closes the window at teardown, before fixtures end: a modal "jobs are running"
    # question then would wait forever. The test of that question turns it back on.
    win.ask_before_close = False
    qtbot.addWidget(win)
    win.show()
    if tab is not None:
        win.tabs.setCurrentIndex(tab)
    qtbot.waitUntil(lambda: ready(win) and not win.runner.running())
    try:
        yield win
    finally:
        win.runner.cancel_all_and_wait()


def tree_row(win: MainWindow, ref: str) -> QModelIndex:
    """The tree's row of ``ref`` (a model or ``model@N``), as the view shows it."""
    flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
    matches = win.proxy.match(win.proxy.index(0, 0), REF_ROLE, ref, 1, flags)
    assert matches, ref
    return matches[0]


def select_ref(qtbot, win: MainWindow, ref: str) -> None:  # type: ignore[no-untyped-def]
    """Select ``ref`` in the tree as a click does, and wait until the tabs show it."""
    win.tree.setCurrentIndex(tree_row(win, ref))
    qtbot.waitUntil(lambda: win.details is not None and win.details.manifest.ref == ref)
