"""Start the desktop application (and take screenshots of it without a person)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from modelmanager import __version__
from modelmanager.gui import TABS
from modelmanager.gui.gc_guard import MainThreadGarbageCollector
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.resources import icon
from modelmanager.services import open_workspace


def application() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("ModelManager")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")  # follows the system's light or dark colour scheme
    app.setWindowIcon(icon("modelmanager"))
    return app


def screenshot_when_ready(window: MainWindow, path: Path, tab: str) -> None:
    """Select the first model, show ``tab``, wait for every read, save a PNG, then quit."""
    steps = iter(["select", "tab", "grab"])
    step = next(steps)

    def tick() -> None:
        nonlocal step
        if window.runner.running():
            return  # still reading: try again on the next tick
        if step == "select":
            window.select_first_model()
        elif step == "tab":
            window.tabs.setCurrentIndex(TABS.index(tab))
        else:
            timer.stop()
            path.parent.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(path))
            QApplication.quit()
            return
        step = next(steps)

    timer = QTimer(window)
    timer.timeout.connect(tick)
    timer.start(100)


def run(repo: Path | None, screenshot: Path | None = None, tab: str = "overview") -> int:
    """Open the window on a repository (the default one without ``repo``); the exit code."""
    app = application()
    collector = MainThreadGarbageCollector()
    window = MainWindow(open_workspace(repo), remember=screenshot is None)
    window.show()
    if screenshot is not None:
        screenshot_when_ready(window, screenshot, tab)
    code = app.exec()
    for ws in window.workspaces.values():
        ws.close()
    collector.stop()
    return int(code)
