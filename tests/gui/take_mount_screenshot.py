"""The mount screenshot for docs/gui.md: the window with File > Mount… active, its status line
("Mounted at …", Open in file manager, Unmount) and the File menu's Mount… action.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_mount_screenshot docs/screenshots
(a throwaway repository in a temporary folder; needs FUSE, as ``modelmanager mount`` does).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from modelmanager import paths
from modelmanager.gui.controllers.mount import default_folder
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.gui.take_screenshots import _save, _wait
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """Mount a small repository from the window, save the window, unmount, clean up."""
    tmp = Path(tempfile.mkdtemp(prefix="mm-mount-shot-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = init_repository(tmp / "models")
    import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama",
                 labels=("prod",))  # fmt: skip
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.resize(1280, 640)
    win.show()
    _wait(app, lambda: win.tree_model.rowCount() > 0 and not win.runner.running())
    win.select_first_model()
    _wait(app, lambda: win.details is not None and not win.runner.running())
    mounts = win.mounts  # type: ignore[attr-defined]
    chooser = mounts.ask_mount()
    chooser.selectFile(str(default_folder(ws.repo.root)))
    chooser.accept()
    _wait(app, lambda: bool(mounts.mounts) and mounts.mounts[0].mounted, limit=6000)
    try:
        for _ in range(30):  # let the status bar lay out its new widgets
            app.processEvents()
        _save(win, out, "mount.png")
    finally:
        win.close()
        _wait(app, lambda: not mounts.mounts, limit=6000)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
