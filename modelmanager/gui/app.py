"""Start the desktop application (and take screenshots of it without a person)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QFileOpenEvent, QPalette
from PySide6.QtWidgets import QApplication

from modelmanager import __version__
from modelmanager.gui import TABS
from modelmanager.gui.controllers.repositories import open_unsynced
from modelmanager.gui.gc_guard import MainThreadGarbageCollector
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.resources import icon


def dark_palette() -> QPalette:
    """Fusion's colours for a dark desktop (Fusion picks them itself only on some platforms)."""
    p = QPalette()
    window, base, text = QColor("#2b2d30"), QColor("#1e1f22"), QColor("#dfe1e5")
    for role, colour in ((QPalette.ColorRole.Window, window), (QPalette.ColorRole.Base, base),
                         (QPalette.ColorRole.AlternateBase, window),
                         (QPalette.ColorRole.Button, window),
                         (QPalette.ColorRole.WindowText, text), (QPalette.ColorRole.Text, text),
                         (QPalette.ColorRole.ButtonText, text),
                         (QPalette.ColorRole.ToolTipBase, base),
                         (QPalette.ColorRole.ToolTipText, text),
                         (QPalette.ColorRole.Highlight, QColor("#3b6fb6")),
                         (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
                         (QPalette.ColorRole.Link, QColor("#6ea0e6")),
                         (QPalette.ColorRole.Mid, QColor("#8a8d92")),
                         (QPalette.ColorRole.PlaceholderText, QColor("#9a9da2"))):  # fmt: skip
        p.setColor(role, colour)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#7a7d82"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#7a7d82"))
    return p


def apply_color_scheme(app: QApplication, scheme: Qt.ColorScheme) -> None:
    """The dark palette for a dark scheme, the style's own otherwise."""
    dark = scheme == Qt.ColorScheme.Dark
    app.setPalette(dark_palette() if dark else app.style().standardPalette())


def follow_color_scheme(app: QApplication) -> None:
    """Use the dark or light palette the OS asks for, now and whenever it changes."""

    def apply(scheme: Qt.ColorScheme) -> None:
        apply_color_scheme(app, scheme)

    if app.property("modelmanager-follows-scheme"):
        return  # connected already (tests make the application more than once)
    app.setProperty("modelmanager-follows-scheme", True)
    hints = app.styleHints()
    hints.colorSchemeChanged.connect(apply)
    if hints.colorScheme() == Qt.ColorScheme.Dark:
        apply(Qt.ColorScheme.Dark)


def application() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("ModelManager")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")
    follow_color_scheme(app)
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


class FileOpenHandler(QObject):
    """Files the desktop asks the app to open: macOS sends them as events, not arguments
    (Finder's "Open With", a double-click on an associated type). Events that arrive
    together (several files chosen) open one import dialog."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.pending: list[Path] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, QFileOpenEvent) and event.file():
            if not self.pending:
                QTimer.singleShot(0, self.flush)
            self.pending.append(Path(event.file()))
            return True
        return super().eventFilter(watched, event)

    def flush(self) -> None:
        paths, self.pending = self.pending, []
        if paths:
            self.window.imports.open_dialog(paths)


def run(
    repo: Path | None,
    screenshot: Path | None = None,
    tab: str = "overview",
    files: list[Path] | None = None,
) -> int:
    """Open the window on a repository (the default one without ``repo``), with an import
    dialog for ``files`` if any (file associations start ``gui FILE...``); the exit code."""
    app = application()
    collector = MainThreadGarbageCollector()
    window = MainWindow(open_unsynced(repo), remember=screenshot is None)  # catches up in a job
    app.installEventFilter(FileOpenHandler(window))
    window.show()
    if files:
        QTimer.singleShot(0, lambda: window.imports.open_dialog(list(files)))
    if screenshot is not None:
        screenshot_when_ready(window, screenshot, tab)
    code = app.exec()
    for ws in window.repositories.workspaces.values():
        ws.close()
    collector.stop()
    return int(code)
