"""Screenshots of the Model menu's dialogs (Redundancy policy…, Codec…), for docs/gui.md.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_model_screenshots [OUT_DIR]``
(a throwaway repository; the real widgets, driven as the tests do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """One model kept once on a repository with two devices; each dialog's picture."""
    with shots.throwaway("mm-shots-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "repo", chunk_size=4096, group_size=1024)
        src = hf_folder(tmp / "src", np.random.default_rng(1))
        import_paths(ws, [src], "acme/tiny-llama", message="version 1")
        add_device(ws, tmp / "d0", name="d0")
        win = shots.open_window(app, ws)
        shots.show_first_version(app, win)
        m = win.model_actions

        m.ask_policy()
        shots.wait(app, lambda: m.policy_dialog is not None and m.policy_dialog.isVisible())
        dialog = m.policy_dialog
        assert dialog is not None
        dialog.copies.setValue(2)
        shots.wait(app, dialog.apply_button.isEnabled)
        shots.save(dialog, out, "policy-preview.png")
        dialog.copies.setValue(5)
        shots.wait(app, lambda: not win.runner.running() and "needs 5" in dialog.preview.text())
        shots.save(dialog, out, "policy-refused.png")
        dialog.reject()

        m.ask_codec()
        shots.wait(app, lambda: m.codec_dialog is not None and m.codec_dialog.isVisible())
        codec = m.codec_dialog
        assert codec is not None
        codec.codec.setCurrentIndex(codec.codec.findData("zstd"))
        codec.level.setValue(3)
        shots.save(codec, out, "codec.png")
        codec.reject()
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
