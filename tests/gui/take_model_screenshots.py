"""Screenshots of the Model menu's dialogs (Redundancy policy…, Codec…), for docs/gui.md.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_model_screenshots docs/screenshots
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
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from tests.gui.take_screenshots import _save, _wait
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """One model kept once on a repository with two devices; each dialog's picture."""
    tmp = Path(tempfile.mkdtemp(prefix="mm-shots-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = init_repository(tmp / "repo", chunk_size=4096, group_size=1024)
    src = hf_folder(tmp / "src", np.random.default_rng(1))
    import_paths(ws, [src], "acme/tiny-llama", message="version 1")
    add_device(ws, tmp / "d0", name="d0")
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.show()
    _wait(app, lambda: win.tree_model.rowCount() > 0 and not win.runner.running())
    win.select_first_model()
    _wait(app, lambda: win.details is not None and not win.runner.running())
    m = win.model_actions

    m.ask_policy()
    _wait(app, lambda: m.policy_dialog is not None and m.policy_dialog.isVisible())
    dialog = m.policy_dialog
    assert dialog is not None
    dialog.copies.setValue(2)
    _wait(app, dialog.apply_button.isEnabled)
    _save(dialog, out, "policy-preview.png")
    dialog.copies.setValue(5)
    _wait(app, lambda: not win.runner.running() and "needs 5" in dialog.preview.text())
    _save(dialog, out, "policy-refused.png")
    dialog.reject()

    m.ask_codec()
    _wait(app, lambda: m.codec_dialog is not None and m.codec_dialog.isVisible())
    codec = m.codec_dialog
    assert codec is not None
    codec.codec.setCurrentIndex(codec.codec.findData("zstd"))
    codec.level.setValue(3)
    _save(codec, out, "codec.png")
    codec.reject()
    win.runner.cancel_all_and_wait()
    win.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
