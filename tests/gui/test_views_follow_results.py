"""Window actions whose views follow the ``changes`` their service's result carries (the window
no longer makes them up): a push that brings a newer label back shows it in the tree; a
recompress shows the version's new stored size in the Overview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from modelmanager.core.codecs import CodecSettings
from modelmanager.core.units import human_bytes
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace, history, init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import add_remote, open_remote, pull, push
from tests.gui.windows import select_ref, shown_window, tree_row
from tests.support.builders import hf_folder, small_model, write_safetensors


def _row_text(win: MainWindow, ref: str) -> str:
    return str(tree_row(win, ref).data())


def test_a_push_that_brings_a_newer_label_back_shows_it_in_the_tree(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    for n in (1, 2):
        source = write_safetensors(tmp_path / f"src{n}" / "model.safetensors",
                                   small_model(np.random.default_rng(n)))  # fmt: skip
        import_paths(ws, [source], "tiny")
    add_remote("nas", (tmp_path / "shared").as_uri())
    push(ws, "tiny@2", open_remote("nas"))
    # Another repository labels tiny@2 "prod" and pushes: the remote's journal has the move.
    other = init_repository(tmp_path / "other")
    try:
        pull(other, open_remote("nas"), "tiny@2")
        history.set_label(other, "tiny@2", "prod")
        push(other, "tiny@2", open_remote("nas"))
    finally:
        other.close()
    with shown_window(qtbot, ws) as win:
        assert "prod" not in _row_text(win, "tiny@2")
        for watch in win.repositories.watches.values():
            watch.stop()  # only the push's own result may refresh the tree
        job = win.remotes.push("tiny@1", "nas")
        qtbot.waitUntil(lambda: job.state == "done", timeout=60_000)
        qtbot.waitUntil(lambda: "prod" in _row_text(win, "tiny@2"))
    assert history.show(ws, "tiny@2")[1] == {"prod": 2}


def test_recompress_shows_the_new_stored_size_in_the_overview(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    import_paths(ws, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny",
                 codec=CodecSettings("raw"))  # fmt: skip
    before = history.version_details(ws, "acme/tiny@1").stored_bytes
    with shown_window(qtbot, ws) as win:
        select_ref(qtbot, win, "acme/tiny@1")
        stored = win.overview_tab.ov["Stored size"]
        assert stored.text() == human_bytes(before)
        job = win.model_actions.recompress(ws, ["acme/tiny@1"], CodecSettings("zstd"))
        qtbot.waitUntil(lambda: job.state == "done", timeout=60_000)
        after = history.version_details(ws, "acme/tiny@1").stored_bytes
        assert after < before
        qtbot.waitUntil(lambda: stored.text() == human_bytes(after))
