"""File > Mount… in the window: a real ``modelmanager mount`` child started through QProcess,
read through FUSE (sha256 equal to the original), Open in file manager, Unmount, closing the
window, a child killed while mounted, a refused folder, the action greyed out on first use
without FUSE, and a window start that does not import the FUSE binding.
The FUSE tests are skipped (with the reason) where /dev/fuse, fusermount3 or mfusepy is missing.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QMenu, QPushButton

from modelmanager.gui.controllers.mount import MountController, default_folder
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.services import Workspace, init_repository, mount_fuse
from modelmanager.services.importing import import_paths
from tests.conftest import TEST_CHUNK, TEST_GROUP
from tests.gui.test_stores_view import UrlCatcher
from tests.gui.windows import shown_window
from tests.services.test_mount import needs_fuse
from tests.support.builders import hf_folder

MODEL = "org/tiny"
SHARD = "model-00001-of-00002.safetensors"
#: A mount starts a Python child that imports the engine: allow a slow shared machine.
START_MS = 60_000


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mounted(where: Path) -> bool:
    lines = Path("/proc/mounts").read_text().splitlines()
    return any(line.split()[1] == str(where) for line in lines)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return hf_folder(tmp_path / "src", np.random.default_rng(0))


@pytest.fixture
def ws(tmp_path: Path, source: Path) -> Workspace:
    ws = init_repository(tmp_path / "repo", chunk_size=TEST_CHUNK, group_size=TEST_GROUP)
    import_paths(ws, [source], MODEL, labels=("prod",))
    return ws


def _visible_buttons(win: MainWindow) -> list[str]:
    """The status bar's buttons a person sees (removeWidget hides one at once; deleteLater
    frees it a turn of the event loop later, so a loaded machine still finds it hidden)."""
    return [b.text() for b in win.statusBar().findChildren(QPushButton) if b.isVisible()]


def _mounts(win: MainWindow) -> MountController:
    """The window's mount controller."""
    return win.mounts


def _mount_action(win: MainWindow) -> QAction:
    file_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&File")
    assert isinstance(file_menu, QMenu)
    return next(a for a in menu_actions(file_menu) if a.text() == "&Mount…")


def _button(win: MainWindow, text: str) -> QPushButton:
    return next(b for b in win.statusBar().findChildren(QPushButton) if b.text() == text)


def _mount_by_menu(qtbot, win: MainWindow) -> Path:  # type: ignore[no-untyped-def]
    """Show the model, trigger File > Mount…, accept the offered default folder, wait until
    mounted."""
    win.select_first_model()
    qtbot.waitUntil(lambda: win.details is not None)
    action = _mount_action(win)
    assert action.isEnabled()
    action.trigger()
    chooser = _mounts(win).chooser
    assert chooser is not None
    qtbot.waitUntil(chooser.isVisible)
    where = default_folder(win.ws.repo.root)
    assert where.is_dir()
    assert not any(where.iterdir())  # made empty, under the user's cache
    assert where.is_relative_to(Path(os.environ["MODELMANAGER_CACHE"]))
    chooser.selectFile(str(where))
    chooser.accept()
    qtbot.waitUntil(lambda: bool(_mounts(win).mounts) and _mounts(win).mounts[0].mounted,
                    timeout=START_MS)  # fmt: skip
    assert _mounted(where)
    return where


@needs_fuse
def test_mount_open_and_unmount_from_the_window(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, source: Path
) -> None:
    with shown_window(qtbot, ws) as win:
        where = _mount_by_menu(qtbot, win)
        # The child runs isolated Python in a neutral folder, never in the window's process.
        args = _mounts(win).mounts[0].process.arguments()
        assert args[:4] == ["-I", "-u", "-m", "modelmanager"]
        assert _mounts(win).mounts[0].process.workingDirectory() == os.path.abspath(os.sep)
        assert _sha(where / MODEL / "@1" / SHARD) == _sha(source / SHARD)
        assert _sha(where / MODEL / "prod" / "config.json") == _sha(source / "config.json")
        assert f"Mounted at {where}" in [w.text() for w in win.statusBar().findChildren(
            type(win.status))]  # fmt: skip

        catcher = UrlCatcher()
        QDesktopServices.setUrlHandler("file", catcher, "open")  # type: ignore[arg-type]  # the stubs say bytes; PySide takes str only
        try:
            _button(win, "Open in file manager").click()
        finally:
            QDesktopServices.unsetUrlHandler("file")
        assert [Path(u.toLocalFile()) for u in catcher.urls] == [where / MODEL]

        _button(win, "Unmount").click()
        qtbot.waitUntil(lambda: not _mounts(win).mounts, timeout=START_MS)
        assert not _mounted(where)
        assert not any(where.iterdir())
        assert "Unmount" not in _visible_buttons(win)
        assert win.statusBar().currentMessage() == f"Unmounted {where}"


@needs_fuse
def test_closing_the_window_unmounts(qtbot, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, ws) as win:
        where = _mount_by_menu(qtbot, win)
        process = _mounts(win).mounts[0].process
        win.close()
        qtbot.waitUntil(lambda: not _mounts(win).mounts, timeout=START_MS)
        assert not _mounted(where)
        assert not any(where.iterdir())
        assert process.exitCode() == 0


@needs_fuse
def test_a_child_killed_while_mounted_is_noticed_and_its_mount_cleared(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace
) -> None:
    with shown_window(qtbot, ws) as win:
        where = _mount_by_menu(qtbot, win)
        os.kill(_mounts(win).mounts[0].process.processId(), signal.SIGKILL)
        qtbot.waitUntil(lambda: not _mounts(win).mounts, timeout=START_MS)
        assert not _mounted(where)  # no dead mount point left behind
        assert _mounts(win).last_error == (
            f"The mount at {where} ended: the mount process was killed"
        )
        assert "Unmount" not in _visible_buttons(win)


@needs_fuse
def test_a_refusal_of_the_child_shows_as_one_line(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with shown_window(qtbot, ws) as win:
        m = _mounts(win).start(full, MODEL)
        assert m is not None
        with qtbot.waitSignal(m.process.finished, timeout=START_MS):
            pass
        assert m.process.exitCode() == 2
        assert not _mounts(win).mounts
        assert _mounts(win).last_error == (
            f"Cannot mount: {full}: the folder is not empty: mount on an empty folder"
        )
        assert win.statusBar().currentMessage() == _mounts(win).last_error
        assert (full / "keep.txt").read_text() == "mine"


def test_mount_is_greyed_out_with_the_reason_on_first_use_without_fuse(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "/dev/fuse is missing: install FUSE 3 (Debian/Ubuntu: apt-get install fuse3)"
    monkeypatch.setattr(mount_fuse, "fuse_problem", lambda: reason)
    with shown_window(qtbot, ws) as win:
        assert isinstance(_mounts(win), MountController)
        action = _mount_action(win)
        action.trigger()  # the first use asks, says why, and greys the action out
        assert _mounts(win).last_error == f"Cannot mount: {reason}"
        assert win.statusBar().currentMessage() == f"Cannot mount: {reason}"
        assert not action.isEnabled()
        assert action.toolTip() == reason
        assert _mounts(win).ask_mount() is None
        assert _mounts(win).chooser is None
        assert not _mounts(win).mounts


def test_window_start_does_not_import_the_fuse_binding(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mfusepy loads libfuse when imported (20-30 ms): File > Mount… pays it, not the start."""
    pytest.importorskip(mount_fuse.BINDING)
    monkeypatch.delitem(sys.modules, mount_fuse.BINDING)  # put back at the end
    with shown_window(qtbot, ws) as win:
        assert mount_fuse.BINDING not in sys.modules
        assert _mount_action(win).isEnabled()  # not known to fail before it is asked
        win.select_first_model()
        qtbot.waitUntil(lambda: win.details is not None and not win.runner.running())
        assert mount_fuse.BINDING not in sys.modules
        problem = _mounts(win).check()  # what File > Mount… asks first
        assert mount_fuse.BINDING in sys.modules or problem is not None
        assert problem == mount_fuse.fuse_problem()
