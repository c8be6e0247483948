"""The library with its On disk column (issue 19: size on disk, every copy, beside the logical
size), sorted by it, one model open; for docs/gui.md.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_on_disk_screenshot \
docs/screenshots (a throwaway repository in a temporary folder).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from modelmanager.gui.library import find_row
from modelmanager.gui.models import ON_DISK, SORT_BASE
from tests.gui.shots import application, close, open_window, out_dir, save, settle, throwaway, wait
from tests.gui.take_library_screenshot import build


def main(out: Path) -> None:
    with throwaway("mm-on-disk-shot-") as tmp:
        app = application()
        ws = build(tmp)
        win = open_window(app, ws, (1280, 720))
        key = str(ws.repo.root)
        wait(app, lambda: all(m.data(SORT_BASE + ON_DISK) >= 0  # measured (a job at start)
                              for m in win.tree_model.model_items(key).values()))  # fmt: skip
        win.tree.sortByColumn(ON_DISK, Qt.SortOrder.DescendingOrder)
        llama = find_row(win.tree, ("repo", key, "meta/llama-tiny"))
        win.tree.expand(llama)
        win.tree.setCurrentIndex(find_row(win.tree, ("repo", key, "meta/llama-tiny@3")))
        wait(app, lambda: win.details is not None and not win.runner.running())
        settle(app)
        save(win, out, "library-on-disk.png")
        close(win, ws)


if __name__ == "__main__":
    main(out_dir())
