"""Failed jobs stay visible (red row with the whole message, Details…, a banner until
dismissed, Clear finished); File > Import… takes a single file; drops are copies; every
shortcut is listed in a menu; counts read "1 job", not "1 jobs"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDropEvent
from PySide6.QtWidgets import QMenu

from modelmanager.gui.jobs_bridge import DONE, FAILED
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.gui.notices import FAILED_COLOR
from modelmanager.services import Workspace
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from tests.gui.windows import shown_window
from tests.support.builders import raw_safetensors, small_model, write_safetensors


@pytest.fixture
def window(qtbot, ws: Workspace, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    src = write_safetensors(tmp_path / "v1" / "model.safetensors",
                            small_model(np.random.default_rng(1)))  # fmt: skip
    import_paths(ws, [src], "acme/tiny")
    with shown_window(qtbot, ws) as win:
        yield win


def _import_through_file_menu(qtbot, win: MainWindow, path: Path) -> None:  # type: ignore[no-untyped-def]
    """File > Import… (Ctrl+I), pick ``path`` in the file chooser, accept the import dialog."""
    [act] = [a for a in win.findChildren(QAction) if a.shortcut().toString() == "Ctrl+I"]
    act.trigger()
    chooser = win.imports.chooser
    assert chooser is not None
    qtbot.waitUntil(chooser.isVisible)
    chooser.selectFile(str(path))
    chooser.accept()
    qtbot.waitUntil(lambda: win.imports.dialog is not None and win.imports.dialog.isVisible())
    assert win.imports.dialog.paths == [path]  # type: ignore[union-attr]


def test_a_single_file_imports_through_file_import(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    single = write_safetensors(tmp_path / "loose" / "only.safetensors",
                               small_model(np.random.default_rng(5)))  # fmt: skip
    _import_through_file_menu(qtbot, window, single)
    dialog = window.imports.dialog
    assert dialog is not None
    dialog.model.setCurrentText("loose/only")
    dialog.accept()

    def imported() -> bool:
        jobs = [j for j in window.runner.jobs.values() if j.title == "Import loose/only"]
        return bool(jobs) and jobs[0].state == DONE

    qtbot.waitUntil(imported, timeout=30_000)
    out = tmp_path / "out"
    export_ref(ws, "loose/only@1", out)
    assert (out / "only.safetensors").read_bytes() == single.read_bytes()


def test_a_failed_job_is_red_with_details_and_a_banner_until_dismissed(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    bad = raw_safetensors(tmp_path / "broken.safetensors", b"{not json")
    _import_through_file_menu(qtbot, window, bad)
    with qtbot.waitSignal(window.runner.failed, timeout=30_000) as blocker:
        window.imports.dialog.accept()  # type: ignore[union-attr]
    job = window.runner.jobs[blocker.args[0]]
    assert job.state == FAILED
    assert "broken.safetensors" in job.error
    table = window.jobs_table
    row = table.rows[job.id]
    state = table.item(row, 3)
    assert state.text() == f"failed: {job.error}"  # the whole message, not cut
    assert state.foreground().color().name() == FAILED_COLOR
    details = table.cellWidget(row, 4)
    assert details.text() == "Details…"
    assert details.isEnabled()
    details.click()
    assert table.box is not None
    assert job.error in table.box.text()
    table.box.close()  # type: ignore[attr-defined]

    notice = window.failure_notice
    assert notice.isVisible()
    assert job.error in notice.label.text()
    notice.details_button.click()
    assert notice.box is not None
    assert job.error in notice.box.text()
    notice.box.close()
    notice.dismiss_button.click()
    assert not notice.isVisible()

    # A bug (not a ModelManagerError): Details… holds the traceback.
    def boom(_ctx: object) -> None:
        raise RuntimeError("a bug in the job")

    with qtbot.waitSignal(window.runner.failed):
        bug = window.runner.submit("Check something", boom)
    assert notice.isVisible()
    assert "RuntimeError: a bug in the job" in notice.label.text()
    assert "Traceback (most recent call last)" in bug.details
    table.show_details(bug.id)
    assert "Traceback" in table.box.detailedText()  # type: ignore[attr-defined]
    table.box.close()  # type: ignore[attr-defined]

    # Clear finished drops every ended row; a running job stays with its Cancel button.
    ok = window.runner.submit("Quick job", lambda _ctx: None)
    qtbot.waitUntil(lambda: ok.state == DONE)
    assert table.rowCount() == 3
    table.clear_button.click()
    assert table.rowCount() == 0
    assert table.rows == {}
    assert not [j for j in window.runner.jobs.values() if not j.active]


def test_drops_are_accepted_as_copies(qtbot, window: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A drag proposing Move (Shift held, or a file manager's default) must not be told Move:
    the source would then delete the file."""
    f = write_safetensors(tmp_path / "d.safetensors", small_model(np.random.default_rng(2)))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f))])
    event = QDropEvent(QPointF(QPoint(10, 10)),
                       Qt.DropAction.MoveAction | Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier)  # fmt: skip
    assert event.proposedAction() == Qt.DropAction.MoveAction  # what acceptProposedAction kept
    window.dropEvent(event)
    assert event.isAccepted()
    assert event.dropAction() == Qt.DropAction.CopyAction
    qtbot.waitUntil(lambda: window.imports.dialog is not None)
    window.imports.dialog.reject()  # type: ignore[union-attr]
    assert f.exists()


def test_every_shortcut_is_listed_in_a_menu(window: MainWindow) -> None:
    in_menus = {
        id(a) for top in window.menuBar().actions() if isinstance(top.menu(), QMenu)
        for a in menu_actions(top.menu())  # type: ignore[arg-type]
    }  # fmt: skip
    with_keys = [a for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    keys = {a.shortcut().toString() for a in with_keys}
    assert {"Ctrl+I", "Ctrl+B", "Ctrl+F", "Ctrl+E", "Ctrl+L"} <= keys
    assert [a.text() for a in with_keys if id(a) not in in_menus] == []


def test_counts_are_singular_for_one(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    import threading

    release = threading.Event()
    job = window.runner.submit("Long job", lambda ctx: release.wait(30))
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "1 job running")
    release.set()
    qtbot.waitUntil(lambda: job.state == DONE)
