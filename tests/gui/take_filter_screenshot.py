"""The filter bar screenshot: the library's search box holding the command line's filters
(``--arch llama --size '>100KB'``), the tree showing only the versions they keep.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_filter_screenshot \
docs/screenshots (a throwaway repository in a temporary folder).
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
from modelmanager.services.importing import import_paths
from tests.gui.take_library_screenshot import build
from tests.gui.take_screenshots import _save, _wait
from tests.support.fact_models import bf16_llama

QUERY = "--arch llama --size '>100KB'"


def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mm-filter-shot-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    os.environ["HF_HUB_CACHE"], os.environ["OLLAMA_MODELS"] = str(tmp / "hf"), str(tmp / "ol")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = build(tmp)
    import_paths(ws, [bf16_llama(tmp / "bf16")], "meta/llama-bf16", message="bf16 weights",
                 labels=["prod"])  # fmt: skip
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.show()
    _wait(app, lambda: win.tree_model.rowCount() > 2 and not win.runner.running())
    win.search.setText(QUERY)
    _wait(app, lambda: win.proxy.text == QUERY and not win.runner.running())
    for _ in range(10):
        app.processEvents()
    _save(win, out, "library-filters.png")
    win.runner.cancel_all_and_wait()
    win.close()
    ws.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
