"""The import dialog, driven from File > Import… (Ctrl+I): a folder or files are accepted;
before the import starts it shows the source's size, about how much it takes stored under
the chosen policy, and the devices it lands on; the Import button then imports byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QDialogButtonBox

from modelmanager.core.units import human_bytes
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.services import Workspace
from modelmanager.services.devices import add_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder, tree_bytes


@pytest.fixture
def window(qtbot, ws: Workspace, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    import_paths(ws, [hf_folder(tmp_path / "first", np.random.default_rng(1))], "acme/first")
    add_device(ws, tmp_path / "d0", name="d0")
    with shown_window(qtbot, ws) as win:
        yield win


def _file_action(win: MainWindow, text: str) -> object:
    [menu] = [a.menu() for a in win.menuBar().actions() if a.text() == "&File"]
    [act] = [a for a in menu_actions(menu) if a.text().replace("&", "") == text]  # type: ignore[arg-type]
    return act


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_import_of_a_folder_shows_size_stored_estimate_and_devices_first(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    src = hf_folder(tmp_path / "acme-second", np.random.default_rng(2))
    act = _file_action(window, "Import…")
    assert act.shortcut().toString() == "Ctrl+I"  # type: ignore[attr-defined]
    act.trigger()  # type: ignore[attr-defined]
    chooser = window.imports.chooser
    assert chooser is not None
    qtbot.waitUntil(chooser.isVisible)
    chooser.setDirectory(str(tmp_path))
    chooser.selectFile(str(src))  # a folder, then Open: taken as it is
    chooser.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Open).click()
    qtbot.waitUntil(lambda: window.imports.dialog is not None)
    dialog = window.imports.dialog
    assert dialog is not None
    assert dialog.paths == [src]
    size = _size(src)
    files = len([p for p in src.rglob("*") if p.is_file()])
    qtbot.waitUntil(lambda: dialog.source_bytes is not None)
    assert dialog.size_label.text() == f"{human_bytes(size)} in {files} files"
    assert dialog.stored_label.text().startswith(f"about {human_bytes(size)} (1 copy;")
    names = ", ".join(d.name for d in ws.repo.devices.devices)
    assert "d0" in names
    assert dialog.devices_label.text() == f"{names} (each chunk on 1 of them)"
    dialog.policy.setCurrentText("copies=2")
    assert dialog.stored_label.text().startswith(f"about {human_bytes(2 * size)} (2 copies;")
    assert dialog.devices_label.text() == names  # both devices hold every chunk
    dialog.policy.setCurrentText("ec=2+1")
    assert dialog.stored_label.text().startswith(f"about {human_bytes(size * 1.5)} (ec 2+1")
    assert dialog.devices_label.text() == f"{names} (too few: ec=2+1 needs 3)"
    dialog.policy.setCurrentIndex(0)  # the repository default again
    dialog.model.setCurrentText("acme/second")
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    assert ok.text() == "Import"
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        ok.click()
    qtbot.waitUntil(lambda: "acme/second" in window.imports.existing_models())
    out = tmp_path / "out"
    export_ref(ws, "acme/second@1", out)
    assert tree_bytes(out) == tree_bytes(src)


def test_import_also_takes_single_files(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    src = hf_folder(tmp_path / "one", np.random.default_rng(3), shards=1)
    weights = next(src.glob("*.safetensors"))
    _file_action(window, "Import…").trigger()  # type: ignore[attr-defined]
    chooser = window.imports.chooser
    assert chooser is not None
    qtbot.waitUntil(chooser.isVisible)
    chooser.setDirectory(str(src))
    chooser.selectFile(str(weights))
    chooser.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Open).click()
    qtbot.waitUntil(lambda: window.imports.dialog is not None)
    dialog = window.imports.dialog
    assert dialog is not None
    assert dialog.paths == [weights]
    qtbot.waitUntil(lambda: dialog.source_bytes == weights.stat().st_size)
    assert dialog.size_label.text() == f"{human_bytes(weights.stat().st_size)} in 1 file"
    dialog.reject()


def test_a_new_version_of_a_model_is_estimated_with_the_model_s_own_policy(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    set_policy(ws, "copies=2", "acme/first")  # the default stays copies=1
    src = hf_folder(tmp_path / "next", np.random.default_rng(4))
    size = _size(src)
    dialog = window.imports.open_dialog([src])
    qtbot.waitUntil(lambda: dialog.source_bytes is not None)
    assert dialog.stored_label.text().startswith(f"about {human_bytes(size)} (1 copy;")
    dialog.model.setCurrentText("acme/first")  # a new version keeps its model's copies=2
    assert dialog.stored_label.text().startswith(f"about {human_bytes(2 * size)} (2 copies;")
    dialog.reject()
