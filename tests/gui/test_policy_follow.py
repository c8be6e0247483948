"""A CLI `policy set` made while the window is open, even with the import dialog already open,
changes what the window shows and what its next import writes (issue 19, "Must show").

test_follow_changes covers a dialog opened after the change and a new model; this one keeps the
dialog open across the change and imports a new version of a model already stored once, then
asks a separate `modelmanager scrub` process whether every chunk of it has its two copies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")


from modelmanager.gui.jobs_bridge import DONE
from modelmanager.services import Workspace, open_workspace
from modelmanager.services.importing import import_paths
from modelmanager.services.redundancy import version_layout
from tests.conftest import subprocess_env
from tests.gui.windows import select_ref as _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder


def _cli(tmp_path: Path, ws: Workspace, *args: str) -> str:
    """The real command line in another process; its stdout."""
    return subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(ws.repo.root), *args],
        env=subprocess_env(tmp_path), check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


def test_policy_set_by_the_cli_reaches_an_open_import_dialog_and_what_it_writes(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    import_paths(ws, [hf_folder(tmp_path / "v1", rng, shards=1)], "acme/tiny")
    _cli(tmp_path, ws, "device", "add", str(tmp_path / "disk1"), "--name", "disk1")
    with shown_window(qtbot, ws) as win:
        _select(qtbot, win, "acme/tiny@1")
        assert win.overview_tab.ov["Redundancy"].text() == "copies=1"
        dialog = win.imports.open_dialog([hf_folder(tmp_path / "v2", rng, shards=1)])
        assert dialog.policy.currentText() == "repository default (copies=1)"

        _cli(tmp_path, ws, "policy", "set", "copies=2")  # while the dialog is open
        qtbot.waitUntil(lambda: win.overview_tab.ov["Redundancy"].text() == "copies=2",
                        timeout=20_000)  # fmt: skip
        qtbot.waitUntil(lambda: "policy copies=2" in win.layout_tab.summary.text())
        qtbot.waitUntil(lambda: dialog.policy.currentText() == "repository default (copies=2)")

        dialog.model.setCurrentText("acme/tiny")
        dialog.accept()
        qtbot.waitUntil(lambda: any(j.title == "Import acme/tiny" and j.state == DONE
                                    for j in win.runner.jobs.values()), timeout=30_000)  # fmt: skip
        qtbot.waitUntil(lambda: not win.runner.running())
    again = open_workspace(ws.repo.root)  # what the window wrote, as a fresh process reads it
    try:
        layout = version_layout(again, "acme/tiny@2")
        assert layout.chunks
        assert all(set(c.pieces) == {"main", "disk1"} for c in layout.chunks)
    finally:
        again.close()
    report = json.loads(_cli(tmp_path, ws, "scrub", "--json"))
    assert report["ok"], report
    assert report["under_replicated"] == [], report
    assert report["missing"] == [], report
    assert report["pieces"] == 2 * report["chunks"], report  # two copies of every chunk
