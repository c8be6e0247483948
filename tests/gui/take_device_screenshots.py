"""Screenshots of the Devices tab's dialogs (Settings…, Remove dead device…), for docs/gui.md.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_device_screenshots \
    docs/screenshots
(a throwaway repository in a temporary folder; the real widgets, driven as the tests do).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from modelmanager import paths
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from tests.gui.take_screenshots import _save, _wait
from tests.support.builders import hf_folder


def main(out: Path) -> None:
    """A model kept once on three devices; one fails; each dialog's picture."""
    tmp = Path(tempfile.mkdtemp(prefix="mm-shots-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = init_repository(tmp / "repo", chunk_size=4096, group_size=1024)
    set_device(ws, "main", state="offline")
    for name in ("ssd", "usb"):
        add_device(ws, tmp / name, name=name)
    import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama")
    set_device(ws, "usb", state="offline")  # the disk is failing
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.show()
    tab = win.devices_tab
    win.tabs.setCurrentWidget(tab)
    _wait(app, lambda: len(tab.infos) == 3 and not win.runner.running())

    tab.table.selectRow(1)
    tab.edit_selected()
    _wait(app, lambda: tab.settings_dialog is not None and tab.settings_dialog.isVisible())
    settings = tab.settings_dialog
    assert settings is not None
    settings.name.setText("fast-ssd")
    settings.weight.setValue(2)
    _save(settings, out, "device-settings.png")
    settings.reject()

    tab.table.selectRow(2)
    tab.remove_selected()
    _wait(app, lambda: tab.forget_dialog is not None and tab.forget_dialog.isVisible())
    forget = tab.forget_dialog
    assert forget is not None
    _save(forget, out, "device-remove-preview.png")
    forget.reject()
    win.runner.cancel_all_and_wait()
    win.close()
    ws.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
