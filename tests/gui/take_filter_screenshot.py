"""The filter bar screenshot: the library's search box holding the command line's filters
(``--arch llama --size '>100KB'``), the tree showing only the versions they keep.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_filter_screenshot [OUT_DIR]``
(a throwaway repository).
"""

from __future__ import annotations

from pathlib import Path

from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.gui.take_library_screenshot import build
from tests.support.fact_models import bf16_llama

QUERY = "--arch llama --size '>100KB'"


def main(out: Path) -> None:
    with shots.throwaway("mm-filter-shot-", stores=True) as tmp:
        app = shots.application()
        ws = build(tmp)
        import_paths(ws, [bf16_llama(tmp / "bf16")], "meta/llama-bf16", message="bf16 weights",
                     labels=["prod"])  # fmt: skip
        win = shots.open_window(app, ws, ready=lambda w: w.tree_model.rowCount() > 2)
        win.search.setText(QUERY)
        shots.wait(app, lambda: win.proxy.text == QUERY and not win.runner.running())
        shots.settle(app, 10)
        shots.save(win, out, "library-filters.png")
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
