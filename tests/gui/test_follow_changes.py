"""The window follows what changed: its own jobs' Changes, and writes by another process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from modelmanager import logs
from modelmanager.core.jobs import JobContext
from modelmanager.errors import UserError
from modelmanager.gui.changes import metadata_stamp, stamp_changes
from modelmanager.gui.jobs_bridge import DONE, FAILED
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE
from modelmanager.services import Changes, Workspace, open_workspace
from modelmanager.services.importing import import_paths
from modelmanager.services.redundancy import version_layout
from tests.conftest import subprocess_env
from tests.gui.windows import select_ref as _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder


def _cli(tmp_path: Path, ws: Workspace, *args: str) -> None:
    """Run the real command line in another process, as a person beside the window would."""
    subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(ws.repo.root), *args],
        env=subprocess_env(tmp_path), check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def _matches(win: MainWindow, ref: str) -> list[Any]:
    flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
    return list(win.proxy.match(win.proxy.index(0, 0), REF_ROLE, ref, 1, flags))


def _listed(win: MainWindow, ref: str) -> bool:
    return bool(_matches(win, ref))


def test_writes_by_the_command_line_appear_and_the_next_import_uses_the_new_policy(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    import_paths(ws, [hf_folder(tmp_path / "v1", rng, shards=1)], "acme/tiny", message="base")
    with shown_window(qtbot, ws) as win:
        _select(qtbot, win, "acme/tiny@1")
        assert win.overview_tab.ov["Redundancy"].text() == "copies=1"
        assert win.overview_tab.ov["Labels"].text() == "—"

        _cli(tmp_path, ws, "device", "add", str(tmp_path / "disk1"), "--name", "disk1")
        qtbot.waitUntil(lambda: win.devices_tab.table.rowCount() == 2, timeout=20_000)
        assert win.devices_tab.table.item(1, 0).text() == "disk1"

        _cli(tmp_path, ws, "policy", "set", "copies=2")
        redundancy = win.overview_tab.ov["Redundancy"]
        qtbot.waitUntil(lambda: redundancy.text() == "copies=2", timeout=20_000)
        qtbot.waitUntil(lambda: "policy copies=2" in win.layout_tab.summary.text())

        _cli(tmp_path, ws, "label", "acme/tiny@1", "prod")
        qtbot.waitUntil(lambda: win.overview_tab.ov["Labels"].text() == "prod", timeout=20_000)

        new = hf_folder(tmp_path / "v2", rng, shards=1)
        _cli(tmp_path, ws, "import", str(new), "--model", "acme/tiny", "--message", "cli")
        qtbot.waitUntil(lambda: _listed(win, "acme/tiny@2"), timeout=20_000)
        qtbot.waitUntil(lambda: win.history.rowCount() == 2)  # the shown model's history too

        _cli(tmp_path, ws, "rm", "acme/tiny@2")
        qtbot.waitUntil(lambda: not _listed(win, "acme/tiny@2"), timeout=20_000)

        qtbot.waitUntil(lambda: not win.runner.running())
        dialog = win.imports.open_dialog([hf_folder(tmp_path / "fresh", rng, shards=1)])
        assert dialog.policy.currentText() == "repository default (copies=2)"
        dialog.model.setCurrentText("acme/fresh")
        dialog.accept()
        qtbot.waitUntil(lambda: any(j.title == "Import acme/fresh" and j.state == DONE
                                    for j in win.runner.jobs.values()), timeout=30_000)  # fmt: skip
        qtbot.waitUntil(lambda: _listed(win, "acme/fresh"))
    # What the window wrote, read back by a fresh process's view of the repository.
    again = open_workspace(ws.repo.root)
    try:
        layout = version_layout(again, "acme/fresh@1")
        assert layout.chunks
        assert all(set(c.pieces) == {"main", "disk1"} for c in layout.chunks)
        on_disk1 = {p.name for p in (tmp_path / "disk1").rglob("*") if p.is_file()}
        assert all(any(c.chunk_id in name for name in on_disk1) for c in layout.chunks)
    finally:
        again.close()


def test_stamps_name_the_models_and_storage_that_changed(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    import_paths(ws, [hf_folder(tmp_path / "a", rng, shards=1)], "org/a")
    import_paths(ws, [hf_folder(tmp_path / "b", rng, shards=1)], "b")
    before = metadata_stamp(ws.repo.root)
    assert metadata_stamp(ws.repo.root) == before
    from modelmanager.services.history import set_label

    set_label(ws, "org/a@1", "prod")
    after = metadata_stamp(ws.repo.root)
    assert stamp_changes(before, after) == Changes(frozenset({"org/a"}))
    import_paths(ws, [hf_folder(tmp_path / "b2", rng, shards=1)], "b")
    assert stamp_changes(after, metadata_stamp(ws.repo.root)) == Changes(
        frozenset({"b"}), storage=True
    )
    from modelmanager.services.policies import set_policy

    now = metadata_stamp(ws.repo.root)
    set_policy(ws, "copies=1", "b")  # a policy file written: every model's policy may differ
    assert stamp_changes(now, metadata_stamp(ws.repo.root)).models == {"org/a", "b"}


def test_a_label_job_refreshes_only_the_model_it_names(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    import_paths(ws, [hf_folder(tmp_path / "a", rng, shards=1)], "acme/tiny")
    with shown_window(qtbot, ws) as win:
        _select(qtbot, win, "acme/tiny@1")
        qtbot.waitUntil(lambda: not win.runner.running())
        before = set(win.runner.jobs)
        job = win.history.move_label("acme/tiny@1", "prod")
        qtbot.waitUntil(lambda: job.state == DONE and not win.runner.running())
        titles = [win.runner.jobs[i].title for i in set(win.runner.jobs) - before]
        assert "Read devices" not in titles  # a label moves no storage: no re-survey
        assert "Read the catalog" in titles
        assert "Read acme/tiny@1" in titles
        assert win.overview_tab.ov["Labels"].text() == "prod"


class _UrlCatcher(QObject):
    """Stands in for the desktop's file manager: records the folder it was asked to show."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def show(self, url: QUrl) -> None:
        self.urls.append(url)


def test_bugs_are_logged_with_traceback_and_help_shows_the_log(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    def bug(_ctx: JobContext) -> None:
        raise RuntimeError("boom in a job")

    def mistake(_ctx: JobContext) -> None:
        raise UserError("no model named 'x'")

    with shown_window(qtbot, ws, ready=lambda w: True) as win:
        failing = win.runner.submit("Broken job", bug)
        user = win.runner.submit("User job", mistake)
        qtbot.waitUntil(lambda: failing.state == FAILED and user.state == FAILED)
        text = logs.log_path().read_text("utf-8")
        assert logs.log_path().parent == tmp_path / "data" / "logs"
        assert "Broken job failed: boom in a job" in text
        assert "Traceback (most recent call last)" in text
        assert 'raise RuntimeError("boom in a job")' in text
        assert "User job failed: no model named 'x'\n" in text  # one line, no traceback after it
        assert text.count("Traceback") == 1
        help_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Help")
        show = next(a for a in help_menu.actions() if a.text() == "Show &log")
        show.trigger()
        dialog = win.log_dialog
        qtbot.waitUntil(dialog.isVisible)
        assert dialog.text.isReadOnly()
        assert "RuntimeError: boom in a job" in dialog.text.toPlainText()
        catcher = _UrlCatcher()
        QDesktopServices.setUrlHandler("file", catcher, "show")
        try:
            assert dialog.open_folder()
        finally:
            QDesktopServices.unsetUrlHandler("file")
        assert [Path(u.toLocalFile()) for u in catcher.urls] == [tmp_path / "data" / "logs"]
        dialog.close()


def test_watching_costs_the_same_with_many_models(ws: Workspace, tmp_path: Path) -> None:
    """Two folders are watched and no manifest is looked at, however many models there are
    (a watch per model folder ran into the thousands, and each check stat'ed every file)."""
    from modelmanager.gui.changes import _watched_folders

    rng = np.random.default_rng(4)
    for i in range(3):
        import_paths(ws, [hf_folder(tmp_path / f"m{i}", rng, shards=1)], f"org/m{i}")
    root = ws.repo.root
    assert _watched_folders(root) == [str(root), str(root / "models")]
    stamp = metadata_stamp(root)
    assert stamp.names == {"org/m0", "org/m1", "org/m2"}
    assert {name for name, _mtime, _size in stamp.files} >= {"changes.json", "config.json"}
