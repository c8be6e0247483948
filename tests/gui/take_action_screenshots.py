"""Screenshots of the Shard layout (a chunk selected, a degraded cell), the import dialog, the
Recompress… dialog and the Label… dialog with its journal, for docs/gui.md.

Run (offscreen): QT_QPA_PLATFORM=offscreen .venv/bin/python -m
tests.gui.take_action_screenshots docs/screenshots
(a throwaway repository in a temporary folder; the real widgets, driven as the tests do).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from modelmanager import paths
from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.codecs import CodecSettings
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import history, init_repository
from modelmanager.services.devices import add_device, set_policy
from modelmanager.services.importing import import_paths
from modelmanager.services.redundancy import version_layout
from tests.gui.take_screenshots import _save, _wait
from tests.support.builders import hf_folder, write_safetensors


def main(out: Path) -> None:
    """A 10 MiB model kept twice on three devices, one piece lost; each picture."""
    tmp = Path(tempfile.mkdtemp(prefix="mm-shots-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = init_repository(tmp / "repo", chunk_size=64 * 1024, group_size=4096)
    rng = np.random.default_rng(3)
    tensors = {f"model.layers.{i}.mlp.weight": rng.standard_normal(64 * 1024).astype(np.float32)
               for i in range(40)}  # fmt: skip
    src = write_safetensors(tmp / "src" / "model.safetensors", tensors)
    import_paths(ws, [src.parent], "acme/wide", message="version 1", labels=["prod"],
                 codec=CodecSettings("raw"))  # fmt: skip
    import_paths(ws, [src.parent], "acme/wide", message="version 2")
    history.set_label(ws, "acme/wide@2", "prod")  # a journaled move
    for name in ("d0", "d1"):
        add_device(ws, tmp / name, name=name)
    set_policy(ws, "copies=2", "acme/wide")
    chunks = version_layout(ws, "acme/wide@2").chunks
    damaged = chunks[40]
    [device] = [d for d in damaged.pieces if d != "main"][:1] or ["main"]
    root = tmp / device if device != "main" else tmp / "repo"
    (root / chunk_key(damaged.chunk_id)).unlink()

    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.resize(1280, 760)
    win.show()
    _wait(app, lambda: win.tree_model.rowCount() > 0 and not win.runner.running())
    win.select_first_model()
    _wait(app, lambda: win.details is not None and not win.runner.running())
    tab = win.layout_tab
    win.tabs.setCurrentWidget(tab)
    _wait(app, lambda: tab.grid.layout_data is not None)
    tab.next_button.click()
    _wait(app, lambda: tab.shown_details is not None)
    _save(win, out, "layout-degraded-selected.png")

    win.versions.ask_label()
    _wait(app, lambda: win.versions.label_dialog is not None
          and win.versions.label_dialog.isVisible())  # fmt: skip
    label = win.versions.label_dialog
    assert label is not None
    label.name.setCurrentText("prod")
    _save(label, out, "label-journal.png")
    label.reject()

    m = win.model_actions
    m.ask_recompress()
    _wait(app, lambda: m.recompress_dialog is not None and m.recompress_dialog.isVisible())
    dialog = m.recompress_dialog
    assert dialog is not None
    dialog.codec.setCurrentIndex(dialog.codec.findData("zstd"))
    _wait(app, dialog.start_button.isEnabled)
    _save(dialog, out, "recompress-preview.png")
    dialog.reject()

    folder = hf_folder(tmp / "tiny-llama-v3", np.random.default_rng(1))
    imp = win.imports.open_dialog([folder])
    _wait(app, lambda: imp.source_bytes is not None)
    imp.policy.setCurrentText("copies=2")
    _save(imp, out, "import-dialog.png")
    imp.reject()
    win.runner.cancel_all_and_wait()
    ws.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
