"""The History tab lists the label journal of the shown model, and follows it.

Moves made from the window, by another writer in this process and by the real command line in
another process all appear, newest first, with who made them.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")


from modelmanager.gui.jobs_bridge import DONE
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace
from modelmanager.services.history import set_label
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.gui.windows import select_ref as _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder


def _cli(tmp_path: Path, ws: Workspace, *args: str) -> None:
    """The real command line in another process, as a person beside the window would run it."""
    subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(ws.repo.root), *args],
        env=subprocess_env(tmp_path), check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def _moves(win: MainWindow) -> list[tuple[str, ...]]:
    """(label, from, to, why) of each row, as shown (newest first)."""
    return [(label, old, new, why) for _time, label, old, new, why, _by in win.label_moves.rows()]


def test_history_lists_label_moves_from_the_window_this_process_and_the_command_line(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    for i in range(3):
        import_paths(ws, [hf_folder(tmp_path / f"v{i}", rng, shards=1)], "acme/tiny")
    import_paths(ws, [hf_folder(tmp_path / "o", rng, shards=1)], "other", labels=["prod"])
    set_label(ws, "acme/tiny@1", "prod")  # before the window: read when the model is shown
    with shown_window(qtbot, ws) as win:
        win.tabs.setCurrentIndex(1)  # History
        _select(qtbot, win, "acme/tiny@3")
        assert win.label_moves.shown_model == "acme/tiny"
        assert _moves(win) == [("prod", "—", "@1", "set")]  # other's prod is not listed
        who = f"{getpass.getuser()}@{socket.gethostname()}"
        assert win.label_moves.rows()[0][5] == who
        assert win.label_moves.rows()[0][0][:4].isdigit()  # "2026-… 12:34:56"

        job = win.history.move_label("acme/tiny@3", "prod")  # from the window
        qtbot.waitUntil(lambda: job.state == DONE)
        qtbot.waitUntil(lambda: len(_moves(win)) == 2, timeout=20_000)
        assert _moves(win)[0] == ("prod", "@1", "@3", "set")

        set_label(ws, "acme/tiny@2", "rc")  # another writer, not through the window's jobs
        qtbot.waitUntil(lambda: len(_moves(win)) == 3, timeout=20_000)
        assert _moves(win)[0] == ("rc", "—", "@2", "set")

        _cli(tmp_path, ws, "label", "acme/tiny@2", "prod")  # beside the window
        qtbot.waitUntil(lambda: len(_moves(win)) == 4, timeout=20_000)
        assert _moves(win)[0] == ("prod", "@3", "@2", "set")
        _cli(tmp_path, ws, "label", "acme/tiny", "rc", "--delete")
        qtbot.waitUntil(lambda: len(_moves(win)) == 5, timeout=20_000)
        assert _moves(win)[0] == ("rc", "@2", "—", "removed")
        assert _moves(win)[1:] == [
            ("prod", "@3", "@2", "set"),
            ("rc", "—", "@2", "set"),
            ("prod", "@1", "@3", "set"),
            ("prod", "—", "@1", "set"),
        ]

        _select(qtbot, win, "other@1")  # another model: its own journal
        qtbot.waitUntil(lambda: win.label_moves.shown_model == "other")
        assert _moves(win) == [("prod", "—", "@1", "set")]
        win.clear_details()
        assert win.label_moves.rowCount() == 0
