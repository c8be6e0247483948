"""The main window as every GUI test opens it: shown, idle, and stopped cleanly at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from modelmanager.gui.main_window import MainWindow
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
