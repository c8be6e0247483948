"""Screenshot of Maintenance > Apply hot tier…'s preview: one version pinned by the user kept,
a recent load promoted, an older promotion demoted, bytes per hot device, for docs/gui.md.

Run (offscreen, as root: the hot device is a 1 MiB tmpfs so its fill limit is met for real):
QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_hot_tier_screenshot docs/screenshots
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.hot_tier import apply_hot_tier
from modelmanager.services.importing import import_paths
from modelmanager.services.pin_records import note_use
from modelmanager.services.pinning import pin
from tests.gui.shots import application, close, open_window, out_dir, save, throwaway, wait
from tests.support.builders import random_weights, write_safetensors
from tests.support.mounts import small_tmpfs


def main(out: Path) -> None:
    """Three ~390 KB models; a 1 MiB hot device holds two: the preview swaps the promotion."""
    app = application()
    with throwaway("mm-hot-tier-shot-") as tmp, small_tmpfs(tmp / "nvme", "1m") as nvme:
        ws = init_repository(tmp / "models", chunk_size=64 * 1024)
        set_device(ws, "main", tier="cold")
        for seed, name in enumerate(("acme/tiny-llama", "acme/coder", "acme/vision")):
            rng = np.random.default_rng(seed)
            tensors = {f"layer.{i}.weight": random_weights(rng, (64, 256)) for i in range(6)}
            write_safetensors(tmp / f"src{seed}" / "model.safetensors", tensors)
            import_paths(ws, [tmp / f"src{seed}"], name)
        add_device(ws, nvme, name="nvme", tier="hot")
        pin(ws, "acme/tiny-llama@1")  # the user's pin: always kept
        note_use(ws.repo, "acme/coder", 1)
        apply_hot_tier(ws)  # coder promoted
        note_use(ws.repo, "acme/vision", 1)  # loaded since: vision comes first now
        win = open_window(app, ws, (1280, 640))
        try:
            win.versions.ask_hot_tier()
            wait(app, lambda: win.versions.hot_tier_dialog is not None
                 and win.versions.hot_tier_dialog.isVisible(), limit=6000)  # fmt: skip
            dialog = win.versions.hot_tier_dialog
            assert dialog is not None
            dialog.adjustSize()
            save(dialog, out, "hot-tier-preview.png")
            dialog.reject()
        finally:
            close(win, ws)


if __name__ == "__main__":
    main(out_dir())
