"""Screenshots of the Devices tab's dialogs (Settings…, Remove dead device…), for docs/gui.md.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_device_screenshots [OUT_DIR]``
(a throwaway repository; the real widgets, driven as the tests do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """A model kept once on three devices; one fails; each dialog's picture."""
    with shots.throwaway("mm-shots-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "repo", chunk_size=4096, group_size=1024)
        set_device(ws, "main", state="offline")
        for name in ("ssd", "usb"):
            add_device(ws, tmp / name, name=name)
        import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama")
        set_device(ws, "usb", state="offline")  # the disk is failing
        win = shots.open_window(app, ws)
        tab = win.devices_tab
        win.tabs.setCurrentWidget(tab)
        shots.wait(app, lambda: len(tab.infos) == 3 and not win.runner.running())

        tab.table.selectRow(1)
        tab.edit_selected()
        shots.wait(app, lambda: tab.settings_dialog is not None and tab.settings_dialog.isVisible())
        settings = tab.settings_dialog
        assert settings is not None
        settings.name.setText("fast-ssd")
        settings.weight.setValue(2)
        shots.save(settings, out, "device-settings.png")
        settings.reject()

        tab.table.selectRow(2)
        tab.remove_selected()
        shots.wait(app, lambda: tab.forget_dialog is not None and tab.forget_dialog.isVisible())
        forget = tab.forget_dialog
        assert forget is not None
        shots.save(forget, out, "device-remove-preview.png")
        forget.reject()
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
