"""Screenshot of the Version menu of a version pinned hot ("Pinned hot (since …)", checked,
Unpin offered), for docs/gui.md.

Run (offscreen): QT_QPA_PLATFORM=offscreen .venv/bin/python -m
tests.gui.take_pin_screenshot docs/screenshots
(a throwaway repository in a temporary folder; the real menu, driven as the tests do).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication, QMenu

from modelmanager import paths
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from tests.gui.take_screenshots import _save, _wait
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """Pin a small model from the Version menu, then save the menu as it shows the pin."""
    tmp = Path(tempfile.mkdtemp(prefix="mm-pin-shot-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = init_repository(tmp / "models")
    set_device(ws, "main", tier="cold")
    add_device(ws, tmp / "nvme", name="nvme", tier="hot")
    import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama",
                 labels=("prod",))  # fmt: skip
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.resize(1280, 640)
    win.show()
    try:
        _wait(app, lambda: win.tree_model.rowCount() > 0 and not win.runner.running())
        win.select_first_model()
        _wait(app, lambda: win.details is not None and not win.runner.running())
        win.versions.pin()
        _wait(app, lambda: not win.runner.running(), limit=6000)
        menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Version")
        assert isinstance(menu, QMenu)
        menu.aboutToShow.emit()  # what opening it does: the pin is read
        _wait(app, lambda: not win.runner.running())
        _save(win, out, "pinned-window.png")
        menu.adjustSize()
        _save(menu, out, "version-menu-pinned.png")
    finally:
        win.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
