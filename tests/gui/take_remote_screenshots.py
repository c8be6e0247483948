"""Screenshots of the Add remote dialog (with and without an OS keyring), a remote browsed in the
tree, the Stores view, its deletion preview and the Duplicates dialog, for docs/gui.md.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_remote_screenshots [OUT_DIR]``
(throwaway stores, repository and shared-folder remote; real widgets).
"""

from __future__ import annotations

from pathlib import Path

import keyring
import numpy as np
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtWidgets import QSplitter

from modelmanager.gui.remote_dialog import S3, RemoteDialog
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import add_remote, open_remote, push
from modelmanager.services.stores import add_store
from tests.gui import shots
from tests.services.test_stores import REV1, hf_cache, ollama_store
from tests.support.builders import hf_folder


def _fill(dialog: RemoteDialog, **more: str) -> None:
    """Type the team's S3 remote into the Add remote dialog, and the ``more`` fields."""
    fields = {"name": "team", "endpoint": "http://minio.lan:9000", "bucket": "models", **more}
    for field, text in fields.items():
        getattr(dialog, field).setText(text)


def main(out: Path) -> None:
    """Build stores, a repository and a remote; drive the window; save each picture."""
    with shots.throwaway("mm-shots-", stores=True) as tmp:
        (tmp / "src").mkdir()
        hf = hf_cache(tmp / "hf", tmp / "src")
        ol = ollama_store(tmp / "ol", tmp / "src")
        (tmp / "dl" / "tiny").mkdir(parents=True)  # a downloads folder holding copies of both
        (tmp / "dl" / "tiny" / "model.safetensors").write_bytes(hf["v2"])
        (tmp / "dl" / "tiny" / "model.gguf").write_bytes(ol["gguf"])
        add_store(tmp / "dl", "folder", "Downloads")
        app = shots.application()
        ws = init_repository(tmp / "repo", chunk_size=4096, group_size=1024)
        src = hf_folder(tmp / "m", np.random.default_rng(1))
        import_paths(ws, [src], "acme/tiny-llama", labels=["prod"], message="first")
        import_paths(ws, [tmp / "dl" / "tiny" / "model.gguf"], "tiny", message="from Downloads")
        add_remote("nas", f"file://{tmp / 'shared'}")
        push(ws, "acme/tiny-llama@1", open_remote("nas"))
        previous = keyring.get_keyring()
        # as on this headless machine and in CI
        keyring.set_keyring(FailKeyring())  # type: ignore[no-untyped-call]
        win = shots.open_window(app, ws, (1280, 800))
        shots.wait(app, lambda: bool(win.stores_view.listing) and not win.runner.running())
        win.tree.expandAll()
        splitter = win.findChild(QSplitter)
        if splitter is not None:  # the tree wide enough for its size columns
            splitter.setSizes([820, 460])
        shots.wait(app, lambda: not win.runner.running())
        shots.save(win, out, "stores-and-remotes-tree.png")

        dialog = win.remotes.ask_add()
        dialog.kind.setCurrentIndex(S3)
        _fill(dialog, prefix="team/", profile="lab")
        shots.save(dialog, out, "remote-add-no-keyring.png")
        dialog.reject()
        keyring.set_keyring(previous)

        class Stand(FailKeyring):  # what an OS keyring answers to the dialog's question
            priority = 5

        Stand.__module__ = "keyring.backends.SecretService"
        keyring.set_keyring(Stand())  # type: ignore[no-untyped-call]
        dialog = win.remotes.ask_add()
        _fill(dialog, access_key="AKIAEXAMPLE", secret_key="not-a-real-secret")
        shots.save(dialog, out, "remote-add.png")
        dialog.reject()
        keyring.set_keyring(previous)

        store, models = next(x for x in win.stores_view.listing if x[0].kind == "huggingface")
        old = next(m for m in models if m.revision == REV1)
        box = win.stores_view.ask_delete(store, old)
        shots.save(box, out, "store-delete-preview.png")
        box.reject()

        win.stores_view.find_duplicates()
        shots.wait(
            app, lambda: win.stores_view.duplicates_box is not None and not win.runner.running()
        )
        shots.save(win.stores_view.duplicates_box, out, "duplicates.png")  # type: ignore[arg-type]
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
