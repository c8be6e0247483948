"""The Structure tab on an ONNX encoder (BERT-shaped, written by onnx's helpers), for
docs/structure.md: the graph's inputs, outputs and operators above the folded module tree.

Run (a throwaway repository; the real window, driven as the tests do)::

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_structure_onnx_screenshot [OUT]
"""

from __future__ import annotations

from pathlib import Path

from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.graph_models import write_bert_onnx


def main(out: Path) -> None:
    """The ONNX encoder imported, selected, the Structure tab in front."""
    with shots.throwaway("mm-shots-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "repo")
        model = write_bert_onnx(tmp / "model.onnx")
        import_paths(ws, [model], "demo/bert-encoder-onnx", message="exported with torch.onnx")
        win = shots.open_window(app, ws, (1200, 760))
        win.select_first_model()
        shots.wait(
            app, lambda: win.structure_tab.structure is not None and not win.runner.running()
        )
        win.tabs.setCurrentWidget(win.structure_tab)
        shots.settle(app)
        out.mkdir(parents=True, exist_ok=True)
        shots.save(win, out, "structure-onnx.png")
        win.close()
        ws.close()


if __name__ == "__main__":
    main(shots.out_dir())
