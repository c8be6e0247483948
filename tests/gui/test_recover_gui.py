"""File > Recover repository…: main deleted, the window brings it back from its devices.

The real dialog is filled and accepted, the real recovery and repair run as a job on the
window's runner, and every version of the recovered repository exports byte for byte.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from modelmanager.gui.jobs_bridge import CANCELLED, DONE, FAILED
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE
from modelmanager.gui.recover_dialog import RecoverDialog
from modelmanager.services import Workspace, init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.history import set_label
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder, tree_bytes

CHUNK, GROUP = 4096, 1024
#: The versions the lost repository held (model, labels) in import order.
VERSIONS = [("acme/tiny", ["prod"]), ("acme/tiny", []), ("other", [])]


def _lost_repository(tmp_path: Path, root: Path) -> tuple[Workspace, list[Path], dict[str, Path]]:
    """A repository at ``root`` keeping its data on three devices (copies=2, main offline)."""
    ws = init_repository(root, chunk_size=CHUNK, group_size=GROUP)
    devices = [tmp_path / f"disk{i}" for i in range(3)]
    for i, device in enumerate(devices):
        add_device(ws, device, name=f"d{i}")
    set_policy(ws, "copies=2")
    set_device(ws, "main", state="offline")  # every piece on the devices: main holds metadata
    sources = {}
    for seed, (model, labels) in enumerate(VERSIONS):
        src = hf_folder(tmp_path / f"src{seed}", np.random.default_rng(seed), shards=2)
        result = import_paths(ws, [src], model, labels=labels, message=f"v{seed}")
        sources[result.manifest.ref] = src
    set_label(ws, "acme/tiny@2", "stable")
    set_label(ws, "acme/tiny@1", "stable")  # a label that moved: its journal comes back too
    return ws, devices, sources


def _listed_refs(win: MainWindow, key: str) -> set[str]:
    """The versions the tree lists under the repository ``key`` (what a person sees)."""
    model = win.tree_model
    row = model.repo_row(key)
    if row is None:
        return set()
    repo = model.item(row, 0)
    for m in range(repo.rowCount()):  # version rows are made when a model is opened
        index = repo.child(m, 0).index()
        if model.canFetchMore(index):
            model.fetchMore(index)
    versions = (repo.child(m, 0).child(v, 0) for m in range(repo.rowCount())
                for v in range(repo.child(m, 0).rowCount()))  # fmt: skip
    return {str(item.data(REF_ROLE)) for item in versions}


def _fill(dialog: RecoverDialog, dest: Path, devices: list[Path]) -> None:
    dialog.dest.setText(str(dest))
    for device in devices:
        assert dialog.add_folder(device), dialog.error.text()


def _recover_in_window(qtbot, win: MainWindow, dest: Path, devices: list[Path]) -> None:  # type: ignore[no-untyped-def]
    """Fill the dialog as a person would, press Recover and wait for the job and the tree."""
    dialog = win.recovery.open_dialog()
    qtbot.waitExposed(dialog)
    assert dialog.repair.isChecked()  # repair afterwards is the default
    _fill(dialog, dest, devices)
    dialog.go.click()
    assert dialog.busy
    assert not dialog.go.isEnabled()
    qtbot.waitUntil(lambda: win.recovery.box is not None, timeout=120_000)
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not win.runner.running(), timeout=60_000)


def _exports_byte_for_byte(ws: Workspace, sources: dict[str, Path], out: Path) -> None:
    for ref, src in sources.items():
        export_ref(ws, ref, out / ref.replace("/", "_").replace("@", "-"))
        assert tree_bytes(out / ref.replace("/", "_").replace("@", "-")) == tree_bytes(src), ref


@pytest.mark.parametrize("where", ["new folder", "same folder"])
def test_recover_dialog_brings_back_a_deleted_main_and_shows_it(
    qtbot, tmp_path: Path, where: str
) -> None:  # type: ignore[no-untyped-def]
    """Main deleted and one of three devices lost: the dialog rebuilds main from the two left.

    "same folder": the window shows the lost repository itself, recovered where it was (the
    listed workspace is replaced); "new folder": the window shows another repository and the
    recovered one is opened beside it.
    """
    lost_root = tmp_path / "repo"
    lost, devices, sources = _lost_repository(tmp_path, lost_root)
    home = lost if where == "same folder" else init_repository(tmp_path / "home")
    if home is not lost:
        lost.close()
    with shown_window(qtbot, home) as win:
        shutil.rmtree(lost_root)
        shutil.rmtree(devices[0])  # d0 is gone too: repair rebuilds its pieces on d1, d2
        dest = lost_root if where == "same folder" else tmp_path / "recovered"
        _recover_in_window(qtbot, win, dest, devices[1:])

        box = win.recovery.box
        assert box is not None
        text = box.text()
        assert f"Recovered {dest} from 2 devices (d1, d2): 2 models, 3 versions, 2 labels" in text
        assert "Not given, so set offline: d0" in text
        assert "\\n" not in text  # line breaks, not escaped ones
        assert re.search(r"Repair: [1-9]\d* chunks rebuilt", text), text  # d0's pieces
        assert "0 chunks lost" in text
        assert box.icon() == box.Icon.Information  # every chunk is back to policy
        # The window shows the recovered repository: its tree lists every version.
        assert str(win.ws.repo.root) == str(dest)
        assert win.ws is win.repositories.workspaces[str(dest)]
        qtbot.waitUntil(lambda: _listed_refs(win, str(dest)) == set(sources), timeout=30_000)
        assert win.status.text().endswith("2 models")
        assert str(dest) in win.windowTitle()
        _exports_byte_for_byte(win.ws, sources, tmp_path / "out")
        assert win.ws.repo.read_labels("acme/tiny") == {"prod": 1, "stable": 1}
        moves = [(e["label"], e["old"], e["new"]) for e in win.ws.repo.label_log("acme/tiny")]
        assert moves == [("prod", None, 1), ("stable", None, 2), ("stable", 2, 1)]
    if home is not lost:
        home.close()


def test_a_folder_that_is_not_a_device_is_refused_by_name(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each folder is checked as it is added and again at Recover; no job starts for a wrong one."""
    lost, devices, _sources = _lost_repository(tmp_path, tmp_path / "repo")
    home = init_repository(tmp_path / "home")
    junk = tmp_path / "holiday photos"
    junk.mkdir()
    (junk / "beach.jpg").write_bytes(b"\xff\xd8")
    try:
        with shown_window(qtbot, home) as win:
            dialog = win.recovery.open_dialog()
            assert not dialog.add_folder(junk)
            assert dialog.error.text() == (
                f"{junk} is not a device folder: it has no .modelmanager-device.json and no "
                "meta/config.json"
            )  # fmt: skip
            assert dialog.folders() == []

            # A device that lost its metadata copy after it was added: named at Recover.
            dest = tmp_path / "recovered"
            _fill(dialog, dest, devices[:2])
            (devices[1] / "meta" / "config.json").unlink()
            jobs_before = set(win.runner.jobs)
            dialog.go.click()
            assert dialog.error.text() == (
                f"{devices[1]} is not a device folder: it has no meta/config.json"
            )
            assert not dialog.busy
            assert dialog.isVisible()

            # A destination that is not empty is refused before anything is written.
            dialog.remove_button.setEnabled(True)
            dialog.sources.item(1).setSelected(True)
            dialog.remove_selected()
            assert dialog.folders() == [str(devices[0])]
            (dest / "notes.txt").parent.mkdir()
            (dest / "notes.txt").write_text("mine")
            dialog.go.click()
            assert dialog.error.text() == f"{dest} is not empty; choose an empty or new folder"
            assert not any(win.runner.jobs[i].title.startswith("Recover")
                           for i in set(win.runner.jobs) - jobs_before)  # fmt: skip
            assert (dest / "notes.txt").read_text() == "mine"
    finally:
        lost.close()
        home.close()


def test_a_recovery_that_fails_says_why_in_one_line_and_keeps_the_dialog(
    qtbot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Devices of two different repositories: the engine refuses, the dialog shows its line."""
    lost, devices, _sources = _lost_repository(tmp_path, tmp_path / "repo")
    other = init_repository(tmp_path / "other", chunk_size=CHUNK, group_size=GROUP)
    add_device(other, tmp_path / "other-disk", name="x0")
    try:
        with shown_window(qtbot, other) as win:
            dialog = win.recovery.open_dialog()
            _fill(dialog, tmp_path / "recovered", [devices[0], tmp_path / "other-disk"])
            dialog.go.click()
            job = next(j for j in win.runner.jobs.values() if j.title.startswith("Recover"))
            qtbot.waitUntil(lambda: job.state == FAILED, timeout=60_000)
            assert dialog.error.text() == job.error
            assert "belong to different repositories" in job.error
            assert "\n" not in job.error
            assert "Traceback" not in job.error
            assert dialog.isVisible()
            assert not dialog.busy
            assert dialog.go.isEnabled()
            assert win.recovery.box is None
    finally:
        lost.close()
        other.close()
    assert job.state != DONE


def test_the_list_names_each_device_and_a_damaged_identity_is_refused(
    qtbot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lost, devices, _sources = _lost_repository(tmp_path, tmp_path / "repo")
    home = init_repository(tmp_path / "home")
    try:
        with shown_window(qtbot, home) as win:
            dialog = win.recovery.open_dialog()
            _fill(dialog, tmp_path / "recovered", devices[1:])
            shown = [dialog.sources.item(i).text() for i in range(dialog.sources.count())]
            assert shown == [f"d1    {devices[1]}", f"d2    {devices[2]}"]
            identity = devices[0] / ".modelmanager-device.json"
            identity.write_bytes(identity.read_bytes().replace(b"d0", b"dX"))  # check fails
            assert not dialog.add_folder(devices[0])
            assert dialog.error.text() == (
                f"{devices[0]}: its .modelmanager-device.json is damaged or unreadable"
            )
    finally:
        lost.close()
        home.close()


def test_cancel_stops_the_recovery_and_the_dialog_says_so(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The recovery waits behind another write to its folder; Cancel drops it: nothing written."""
    lost, devices, _sources = _lost_repository(tmp_path, tmp_path / "repo")
    home = init_repository(tmp_path / "home")
    dest = tmp_path / "recovered"
    gate = threading.Event()
    try:
        with shown_window(qtbot, home) as win:
            blocker = win.runner.submit("Hold the folder", lambda _ctx: gate.wait(60), writes=dest)
            dialog = win.recovery.open_dialog()
            _fill(dialog, dest, devices)
            dialog.go.click()
            job = win.recovery.job
            assert job is not None
            assert dialog.busy
            dialog.buttons.button(dialog.buttons.StandardButton.Cancel).click()
            qtbot.waitUntil(lambda: job.state == CANCELLED, timeout=20_000)
            assert dialog.error.text().startswith("Stopped.")
            assert dialog.isVisible()
            assert not dialog.busy
            gate.set()
            qtbot.waitUntil(lambda: blocker.state == DONE and not win.runner.running())
            assert not dest.exists()  # the recovery never started: nothing written
            assert str(dest) not in win.repositories.workspaces
    finally:
        gate.set()
        lost.close()
        home.close()
