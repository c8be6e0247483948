"""The mount screenshot for docs/gui.md: the window with File > Mount… active, its status line
("Mounted at …", Open in file manager, Unmount) and the File menu's Mount… action.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_mount_screenshot [OUT_DIR]``
(a throwaway repository; needs FUSE, as ``modelmanager mount`` does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.gui.controllers.mount import default_folder
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """Mount a small repository from the window, save the window, unmount, clean up."""
    with shots.throwaway("mm-mount-shot-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "models")
        import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama",
                     labels=("prod",))  # fmt: skip
        win = shots.open_window(app, ws, (1280, 640))
        shots.show_first_version(app, win)
        mounts = win.mounts
        chooser = mounts.ask_mount()
        assert chooser is not None, mounts.last_error
        chooser.selectFile(str(default_folder(ws.repo.root)))
        chooser.accept()
        shots.wait(app, lambda: bool(mounts.mounts) and mounts.mounts[0].mounted, limit=6000)
        try:
            shots.settle(app, 30)  # let the status bar lay out its new widgets
            shots.save(win, out, "mount.png")
        finally:
            win.close()
            shots.wait(app, lambda: not mounts.mounts, limit=6000)


if __name__ == "__main__":
    main(shots.out_dir())
