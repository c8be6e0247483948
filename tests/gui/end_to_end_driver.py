"""Run by test_end_to_end: the real app on a repository, driven as a user would (issue 19).

Usage: end_to_end_driver.py REPO CHECKPOINT EXPORT_DIR DEVICE_DIR

It starts the app through the console script's own function (``modelmanager --repo REPO gui``)
offscreen, then, from the app's event loop: drops CHECKPOINT on the window (a real QDropEvent)
and accepts the import dialog, recording every value the job's progress bar in the Jobs tab
shows; exports the version through Version > Export… into EXPORT_DIR; flips a byte of the
largest piece on DEVICE_DIR; runs Maintenance > Scrub, > Repair and > Scrub again. Prints one
JSON line of what it saw; stderr is the app's own (the test wants it clean).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QProgressBar

from modelmanager.cli.main import main as cli_main
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.gui.report_dialog import ReportDialog

Wait = Callable[[], bool]


def _menu_action(win: MainWindow, menu_text: str, text: str) -> Any:
    [menu] = [a.menu() for a in win.menuBar().actions() if a.text() == menu_text]
    return next(a for a in menu_actions(menu) if a.text().replace("&", "") == text)  # type: ignore[arg-type]


def _report(dialog: ReportDialog) -> dict[str, Any]:
    return {"summary": dialog.report.summary, "ok": dialog.report.ok, "lines": dialog.lines()}


def scenario(win: MainWindow, argv: list[str], out: dict[str, Any]) -> Iterator[Wait]:
    """The user's steps; each yield is the condition the next step waits for."""
    checkpoint, export_dir, device = Path(argv[2]), Path(argv[3]), Path(argv[4])
    yield lambda: not win.runner.running()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(checkpoint))])
    at = QPoint(win.width() // 2, win.height() // 2)
    enter = QDragEnterEvent(at, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QApplication.sendEvent(win, enter)
    out["drag_accepted"] = enter.isAccepted()
    drop = QDropEvent(QPointF(at), Qt.DropAction.CopyAction | Qt.DropAction.MoveAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QApplication.sendEvent(win, drop)
    out["drop_action"] = drop.dropAction().name
    yield lambda: win.imports.dialog is not None
    dialog = win.imports.dialog
    assert dialog is not None
    dialog.model.setCurrentText("big")
    seen: list[int] = []
    out["progress"] = seen

    def record(job_id: object) -> None:
        row = win.jobs_table.rows.get(job_id)  # type: ignore[call-overload]
        job = win.runner.jobs.get(job_id)  # type: ignore[call-overload]
        if row is None or job is None or job.title != "Import big":
            return
        bar = win.jobs_table.cellWidget(row, 1)
        assert isinstance(bar, QProgressBar)
        seen.append(bar.value() * 100 // max(bar.maximum(), 1))  # as the bar shows it, in %
        out["import_state"], out["import_error"] = job.state, job.error
        out["import_total"], out["import_bar_text"] = job.total, bar.text()

    win.runner.changed.connect(record)  # connected after the tab's: the bar is up to date
    dialog.accept()
    yield lambda: out.get("import_state") in ("done", "failed", "cancelled")
    win.runner.changed.disconnect(record)
    if out["import_state"] != "done":
        return
    yield lambda: not win.runner.running()
    chooser = win.versions.choose_export("big@1")
    assert chooser is not None
    chooser.selectFile(str(export_dir))
    chooser.accept()
    yield lambda: any(j.title.startswith("Export big@1") and not j.active
                      for j in win.runner.jobs.values())  # fmt: skip
    export = next(j for j in win.runner.jobs.values() if j.title.startswith("Export big@1"))
    out["export_state"], out["export_error"] = export.state, export.error
    yield lambda: not win.runner.running()
    pieces = [p for p in (device / "chunks").rglob("*") if p.is_file()]
    piece = max(pieces, key=lambda p: p.stat().st_size)
    with open(piece, "r+b") as f:
        f.seek(piece.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    out["damaged"] = piece.name
    for step in ("Scrub", "Repair", "Scrub"):
        before = win.health.dialog
        _menu_action(win, "&Maintenance", step).trigger()
        yield lambda before=before: win.health.dialog not in (None, before)
        assert win.health.dialog is not None
        out.setdefault("reports", []).append({"step": step, **_report(win.health.dialog)})
        win.health.dialog.close()
        yield lambda: not win.runner.running()


def main() -> None:
    argv = sys.argv
    out: dict[str, Any] = {}
    app = QApplication(sys.argv[:1])
    steps: Iterator[Wait] | None = None
    waiting: list[Wait] = []
    timer = QTimer()

    def tick() -> None:
        nonlocal steps
        if steps is None:
            found = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
            if not found:
                return
            found[0].ask_before_close = False
            steps = scenario(found[0], argv, out)
        if waiting and not waiting[0]():
            return
        try:
            waiting[:] = [next(steps)]
        except StopIteration:
            timer.stop()
            app.quit()
        except Exception as e:  # the test shows it; the app is closed all the same
            out["driver_error"] = f"{type(e).__name__}: {e}"
            timer.stop()
            app.quit()

    timer.timeout.connect(tick)
    timer.start(20)
    code = cli_main(["--repo", argv[1], "gui"])
    out["exit_code"] = code
    print(json.dumps(out))


if __name__ == "__main__":
    main()
