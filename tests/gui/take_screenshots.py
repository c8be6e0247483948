"""Screenshots of the Version and Maintenance dialogs and of a failed job, for docs/gui.md.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_screenshots docs/screenshots
(a throwaway repository in a temporary folder; the real widgets, driven as the tests do).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication, QWidget

from modelmanager import paths
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_policy
from modelmanager.services.importing import import_paths
from modelmanager.tabs import TABS
from tests.support.builders import hf_folder, raw_safetensors


def _wait(app: QApplication, ready: Callable[[], bool], limit: int = 3000) -> None:
    for _ in range(limit):
        app.processEvents()
        if ready():
            return
        QApplication.instance().thread().msleep(10)  # type: ignore[union-attr]
    raise TimeoutError("the window did not get there")


def _save(widget: QWidget, out: Path, name: str) -> None:
    widget.grab().save(str(out / name))
    print(out / name)


def main(out: Path) -> None:
    """Build a small repository, drive the window, save each new dialog's picture."""
    tmp = Path(tempfile.mkdtemp(prefix="mm-shots-"))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    app = QApplication.instance() or QApplication(sys.argv)
    ws = init_repository(tmp / "repo", chunk_size=4096, group_size=1024)
    add_device(ws, tmp / "d0", name="d0")
    set_policy(ws, "copies=2")
    for n, labels in ((1, ["prod"]), (2, [])):
        src = hf_folder(tmp / f"src{n}", np.random.default_rng(n))
        import_paths(ws, [src], "acme/tiny-llama", labels=labels, message=f"version {n}")
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False
    win.resize(1280, 800)
    win.show()
    _wait(app, lambda: win.tree_model.rowCount() > 0 and not win.runner.running())
    win.select_first_model()
    _wait(app, lambda: win.details is not None and not win.runner.running())
    ref = win.shown_ref()
    assert ref is not None

    win.versions.export(ref, tmp / "exported")
    _wait(app, lambda: win.versions.dialog is not None)
    _save(win.versions.dialog, out, "export-done.png")  # type: ignore[arg-type]
    win.versions.dialog.close()  # type: ignore[union-attr]

    win.versions.ask_label(ref)
    _wait(app, lambda: win.versions.label_dialog is not None)
    win.versions.label_dialog.name.setCurrentText("prod")  # type: ignore[union-attr]
    _save(win.versions.label_dialog, out, "label.png")  # type: ignore[arg-type]
    win.versions.label_dialog.reject()  # type: ignore[union-attr]

    pieces = sorted(p for p in (tmp / "d0" / "chunks").rglob("*") if p.is_file())
    for piece in pieces[:3]:
        data = bytearray(piece.read_bytes())
        data[len(data) // 2] ^= 0xFF
        piece.write_bytes(bytes(data))
    record = sorted(p for p in (tmp / "d0" / "meta").rglob("*") if p.is_file())[0]
    record.write_bytes(record.read_bytes()[:-3])
    win.health.scrub()
    _wait(app, lambda: win.health.dialog is not None)
    scrubbed = win.health.dialog
    _save(scrubbed, out, "scrub-report.png")  # type: ignore[arg-type]
    scrubbed.buttons["Repair now"].click()  # type: ignore[union-attr]
    _wait(app, lambda: win.health.dialog is not scrubbed)
    _save(win.health.dialog, out, "repair-report.png")  # type: ignore[arg-type]
    win.health.dialog.close()  # type: ignore[union-attr]
    scrubbed.close()  # type: ignore[union-attr]

    bad = raw_safetensors(tmp / "broken.safetensors", b"{not json")
    dialog = win.imports.open_dialog([bad])
    dialog.accept()
    _wait(app, lambda: win.failure_notice.isVisible())
    win.runner.submit("Export acme/tiny-llama@2 to /tmp/x", lambda _c: None)
    _wait(app, lambda: not win.runner.running())
    win.tabs.setCurrentIndex(TABS.index("jobs"))
    app.processEvents()
    _save(win, out, "jobs-failed.png")
    win.jobs_table.show_details(max(win.runner.jobs))  # the last failure: "Export" is done
    failed = [j for j in win.runner.jobs.values() if j.state == "failed"]
    win.jobs_table.show_details(failed[-1].id)
    _wait(app, lambda: win.jobs_table.box is not None)
    _save(win.jobs_table.box, out, "job-details.png")  # type: ignore[arg-type]
    win.runner.cancel_all_and_wait()
    win.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
