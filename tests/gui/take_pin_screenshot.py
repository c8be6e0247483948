"""Screenshot of the Version menu of a version pinned hot ("Pinned hot (since …)", checked,
Unpin offered), for docs/gui.md.

Run (offscreen): QT_QPA_PLATFORM=offscreen .venv/bin/python -m
tests.gui.take_pin_screenshot docs/screenshots
(a throwaway repository in a temporary folder; the real menu, driven as the tests do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QMenu

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from tests.gui.shots import (
    application,
    close,
    open_window,
    out_dir,
    save,
    show_first_version,
    throwaway,
    wait,
)
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """Pin a small model from the Version menu, then save the menu as it shows the pin."""
    app = application()
    with throwaway("mm-pin-shot-") as tmp:
        ws = init_repository(tmp / "models")
        set_device(ws, "main", tier="cold")
        add_device(ws, tmp / "nvme", name="nvme", tier="hot")
        import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama",
                     labels=("prod",))  # fmt: skip
        win = open_window(app, ws, (1280, 640))
        try:
            show_first_version(app, win)
            win.versions.pin()  # the plan is read, then the pin runs: no demotion to ask about
            wait(app, lambda: "Pinned" in win.statusBar().currentMessage(), limit=6000)
            menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Version")
            assert isinstance(menu, QMenu)
            menu.aboutToShow.emit()  # what opening it does: the pin is read
            wait(app, lambda: not win.runner.running())
            menu.adjustSize()
            save(menu, out, "version-menu-pinned.png")
        finally:
            close(win, ws)


if __name__ == "__main__":
    main(out_dir())
