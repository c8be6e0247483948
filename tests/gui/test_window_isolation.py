"""The window's import, started from inside a model folder that carries code (issue 15):
the GGUF, HDF5 and ONNX files go through the sandbox's children, and nothing of the folder runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPoint, QPointF, QStandardPaths, Qt, QUrl
from PySide6.QtGui import QDropEvent

from modelmanager.services import Workspace
from modelmanager.services.history import show
from tests.gui.windows import shown_window
from tests.support.hostile_folder import canaries_fired, hostile_folder

QStandardPaths.setTestModeEnabled(True)  # QSettings of tests never touch the user's


def test_dropped_files_from_a_hostile_working_folder_import_and_run_none_of_its_code(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = tmp_path / "canaries"
    folder = hostile_folder(tmp_path / "hostile-model", canaries)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PYTHONPATH", str(folder))
    files = [folder / "tiny.gguf", folder / "keras.h5", folder / "graph.onnx"]
    with shown_window(qtbot, ws, ready=lambda win: True) as win:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in files])
        at, copy = QPointF(QPoint(400, 300)), Qt.DropAction.CopyAction
        left, plain = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        win.dropEvent(QDropEvent(at, copy, mime, left, plain))
        qtbot.waitUntil(lambda: win.imports.dialog is not None)
        win.imports.dialog.model.setCurrentText("hostile")
        with qtbot.waitSignal(win.runner.succeeded, timeout=60_000):
            win.imports.dialog.accept()
        qtbot.waitUntil(lambda: not win.runner.running())
    manifest, _labels = show(ws, "hostile")
    assert {f.path for f in manifest.files} == {"tiny.gguf", "keras.h5", "graph.onnx"}
    names = {t.name for _f, t in manifest.tensors}
    assert {"token_embd.weight", "model_weights/dense/kernel", "W"} <= names
    assert canaries_fired(canaries) == []


def test_a_matplotlibrc_in_the_working_folder_does_not_style_the_charts(tmp_path: Path) -> None:
    """matplotlib reads ``./matplotlibrc`` first; the charts use matplotlib's own defaults."""
    (tmp_path / "matplotlibrc").write_text("lines.linewidth: 42\naxes.facecolor: red\n")
    probe = (
        "import matplotlib, modelmanager.gui.charts; "
        "print(matplotlib.rcParams['lines.linewidth'], matplotlib.rcParams['axes.facecolor'])"
    )
    done = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, check=True,
                          capture_output=True, text=True)  # fmt: skip
    assert done.stdout.split() == ["1.5", "white"]
