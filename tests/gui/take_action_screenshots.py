"""Screenshots of the Shard layout (a chunk selected, a degraded cell), the import dialog, the
Recompress… dialog and the Label… dialog with its journal, for docs/gui.md.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_action_screenshots [OUT_DIR]``
(a throwaway repository; the real widgets, driven as the tests do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.codecs import CodecSettings
from modelmanager.services import history, init_repository
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import version_layout
from tests.gui import shots
from tests.support.builders import hf_folder, write_safetensors


def main(out: Path) -> None:
    """A 10 MiB model kept twice on three devices, one piece lost; each picture."""
    with shots.throwaway("mm-shots-") as tmp:
        app = shots.application()
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

        win = shots.open_window(app, ws, (1280, 760))
        shots.show_first_version(app, win)
        tab = win.layout_tab
        win.tabs.setCurrentWidget(tab)
        shots.wait(app, lambda: tab.grid.layout_data is not None)
        tab.next_button.click()
        shots.wait(app, lambda: tab.shown_details is not None)
        shots.save(win, out, "layout-degraded-selected.png")

        win.versions.ask_label()
        shots.wait(app, lambda: win.versions.label_dialog is not None
              and win.versions.label_dialog.isVisible())  # fmt: skip
        label = win.versions.label_dialog
        assert label is not None
        label.name.setCurrentText("prod")
        shots.save(label, out, "label-journal.png")
        label.reject()

        m = win.model_actions
        m.ask_recompress()
        shots.wait(app, lambda: m.recompress_dialog is not None and m.recompress_dialog.isVisible())
        dialog = m.recompress_dialog
        assert dialog is not None
        dialog.codec.setCurrentIndex(dialog.codec.findData("zstd"))
        shots.wait(app, dialog.start_button.isEnabled)
        shots.save(dialog, out, "recompress-preview.png")
        dialog.reject()

        folder = hf_folder(tmp / "tiny-llama-v3", np.random.default_rng(1))
        imp = win.imports.open_dialog([folder])
        shots.wait(app, lambda: imp.source_bytes is not None)
        imp.policy.setCurrentText("copies=2")
        shots.save(imp, out, "import-dialog.png")
        imp.reject()
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
