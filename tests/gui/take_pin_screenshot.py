"""Screenshot of the Version menu of a version pinned hot ("Pinned hot (since …)", checked,
Unpin offered), for docs/gui.md.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_pin_screenshot [OUT_DIR]``
(a throwaway repository; the real menu, driven as the tests do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QMenu

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """Pin a small model from the Version menu, then save the menu as it shows the pin."""
    with shots.throwaway("mm-pin-shot-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "models")
        set_device(ws, "main", tier="cold")
        add_device(ws, tmp / "nvme", name="nvme", tier="hot")
        import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama",
                     labels=("prod",))  # fmt: skip
        win = shots.open_window(app, ws, (1280, 640))
        try:
            shots.wait(app, lambda: win.tree_model.rowCount() > 0 and not win.runner.running())
            win.select_first_model()
            shots.wait(app, lambda: win.details is not None and not win.runner.running())
            win.versions.pin()
            shots.wait(app, lambda: not win.runner.running(), limit=6000)
            menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Version")
            assert isinstance(menu, QMenu)
            menu.aboutToShow.emit()  # what opening it does: the pin is read
            shots.wait(app, lambda: not win.runner.running())
            shots.save(win, out, "pinned-window.png")
            menu.adjustSize()
            shots.save(menu, out, "version-menu-pinned.png")
        finally:
            win.close()


if __name__ == "__main__":
    main(shots.out_dir())
