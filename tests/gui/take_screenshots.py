"""Screenshots of the Version and Maintenance dialogs and of a failed job, for docs/gui.md.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_screenshots [OUT_DIR]``
(a throwaway repository; the real widgets, driven as the tests do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from modelmanager.tabs import TABS
from tests.gui import shots
from tests.support.builders import hf_folder, raw_safetensors


def main(out: Path) -> None:
    """Build a small repository, drive the window, save each new dialog's picture."""
    with shots.throwaway("mm-shots-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "repo", chunk_size=4096, group_size=1024)
        add_device(ws, tmp / "d0", name="d0")
        set_policy(ws, "copies=2")
        for n, labels in ((1, ["prod"]), (2, [])):
            src = hf_folder(tmp / f"src{n}", np.random.default_rng(n))
            import_paths(ws, [src], "acme/tiny-llama", labels=labels, message=f"version {n}")
        win = shots.open_window(app, ws, (1280, 800))
        shots.show_first_version(app, win)
        ref = win.shown_ref()
        assert ref is not None

        win.versions.export(ref, tmp / "exported")
        shots.wait(app, lambda: win.versions.dialog is not None)
        shots.save(win.versions.dialog, out, "export-done.png")  # type: ignore[arg-type]
        win.versions.dialog.close()  # type: ignore[union-attr]

        win.versions.ask_label(ref)
        shots.wait(app, lambda: win.versions.label_dialog is not None)
        win.versions.label_dialog.name.setCurrentText("prod")  # type: ignore[union-attr]
        shots.save(win.versions.label_dialog, out, "label.png")  # type: ignore[arg-type]
        win.versions.label_dialog.reject()  # type: ignore[union-attr]

        pieces = sorted(p for p in (tmp / "d0" / "chunks").rglob("*") if p.is_file())
        for piece in pieces[:3]:
            data = bytearray(piece.read_bytes())
            data[len(data) // 2] ^= 0xFF
            piece.write_bytes(bytes(data))
        record = sorted(p for p in (tmp / "d0" / "meta").rglob("*") if p.is_file())[0]
        record.write_bytes(record.read_bytes()[:-3])
        win.health.scrub()
        shots.wait(app, lambda: win.health.dialog is not None)
        scrubbed = win.health.dialog
        shots.save(scrubbed, out, "scrub-report.png")  # type: ignore[arg-type]
        scrubbed.buttons["Repair now"].click()  # type: ignore[union-attr]
        shots.wait(app, lambda: win.health.dialog is not scrubbed)
        shots.save(win.health.dialog, out, "repair-report.png")  # type: ignore[arg-type]
        win.health.dialog.close()  # type: ignore[union-attr]
        scrubbed.close()  # type: ignore[union-attr]

        bad = raw_safetensors(tmp / "broken.safetensors", b"{not json")
        dialog = win.imports.open_dialog([bad])
        dialog.accept()
        shots.wait(app, lambda: win.failure_notice.isVisible())
        win.runner.submit("Export acme/tiny-llama@2 to /tmp/x", lambda _c: None)
        shots.wait(app, lambda: not win.runner.running())
        win.tabs.setCurrentIndex(TABS.index("jobs"))
        app.processEvents()
        shots.save(win, out, "jobs-failed.png")
        win.jobs_table.show_details(max(win.runner.jobs))  # the last failure: "Export" is done
        failed = [j for j in win.runner.jobs.values() if j.state == "failed"]
        win.jobs_table.show_details(failed[-1].id)
        shots.wait(app, lambda: win.jobs_table.box is not None)
        shots.save(win.jobs_table.box, out, "job-details.png")  # type: ignore[arg-type]
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
