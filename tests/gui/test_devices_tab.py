"""The Devices tab driven through its buttons and dialogs: settings (rename, weight, tier),
removing a dead device (previewed, confirmed when it loses data), capacity bars, and the
warning when devices share one file system; the repository is checked afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox, QProgressBar

from modelmanager.core.placement import Device, read_identity
from modelmanager.core.units import human_bytes
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.tabs.devices import BAR_STEPS, FREE, HOT, OURS, SHARED, USAGE, usage_bar
from modelmanager.services import Workspace
from modelmanager.services.devices import DeviceInfo, add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.pinning import pin
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import scrub
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder
from tests.support.filesystems import other_fs

__all__ = ["other_fs"]  # the fixture, used by name


def _devices_ready(win: MainWindow) -> bool:
    return win.tree_model.rowCount() > 0 and len(win.devices_tab.infos) > 0


@pytest.fixture
def cluster(ws: Workspace, tmp_path: Path) -> Workspace:
    """main offline; a model on three device folders d0, d1, d2 (one file system)."""
    set_device(ws, "main", state="offline")
    for i in range(3):
        add_device(ws, tmp_path / f"dev{i}", name=f"d{i}")
    return ws


@contextmanager
def _window(qtbot, ws: Workspace) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, ws, _devices_ready) as win:
        win.tabs.setCurrentWidget(win.devices_tab)
        yield win


def _row(win: MainWindow, name: str) -> int:
    tab = win.devices_tab
    return next(r for r in range(tab.table.rowCount()) if tab.table.item(r, 0).text() == name)


def _idle(qtbot, win: MainWindow, ready=lambda: True) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not win.runner.running() and ready(), timeout=20_000)


def test_capacity_bars_free_space_and_shared_file_system_warning(
    qtbot, ws: Workspace, tmp_path: Path, other_fs: Path
) -> None:  # type: ignore[no-untyped-def]
    add_device(ws, tmp_path / "a", name="a")
    add_device(ws, other_fs / "b", name="b")
    import_paths(ws, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    with _window(qtbot, ws) as win:
        tab = win.devices_tab
        _idle(qtbot, win, lambda: len(tab.infos) == 3)
        assert tab.warning.isVisible()
        assert "one file system holds several devices (main and a)" in tab.warning.text()
        shared = {tab.table.item(r, 0).text(): tab.table.item(r, SHARED).text()
                  for r in range(3)}  # fmt: skip
        assert shared == {"main": "shared with a", "a": "shared with main", "b": "own"}
        for row, info in enumerate(tab.infos):
            bar = tab.table.cellWidget(row, USAGE)
            assert isinstance(bar, QProgressBar)
            assert info.capacity is not None
            assert info.free is not None
            assert info.capacity > 2**31  # real disks: sizes past 32-bit ints
            taken = (info.capacity - info.free) / info.capacity
            assert bar.maximum() == BAR_STEPS
            assert abs(bar.value() - BAR_STEPS * taken) <= 1
            assert bar.text() == f"{round(100 * taken)} % of {human_bytes(info.capacity)}"
            assert tab.table.item(row, FREE).text() == human_bytes(info.free)
            assert tab.table.item(row, OURS).text() == human_bytes(info.used)


def test_usage_bar_of_a_disk_of_many_terabytes_does_not_overflow(qapp) -> None:  # type: ignore[no-untyped-def]
    device = Device("id", "big", "/nowhere")
    tib = 1 << 40
    info = DeviceInfo(device, Path("/nowhere"), True, 16 * tib, 4 * tib, 3 * tib, 10, 10)
    bar = usage_bar(info)
    assert (bar.maximum(), bar.value()) == (BAR_STEPS, 750)
    assert bar.text() == "75 % of 16.0 TiB"
    assert bar.toolTip() == "12.0 TiB used, 4.0 TiB free; 3.0 TiB of it ModelManager's pieces"


def test_adding_a_folder_on_a_shared_file_system_warns(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import_paths(ws, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    with _window(qtbot, ws) as win:
        tab = win.devices_tab
        assert not tab.warning.isVisible()
        tab.add(tmp_path / "same-disk")
        qtbot.waitUntil(lambda: tab.added_box is not None and tab.added_box.isVisible())
        assert tab.added_box is not None
        assert "same-disk is on the same file system as main" in tab.added_box.text()
        tab.added_box.button(QMessageBox.StandardButton.Ok).click()
        _idle(qtbot, win, lambda: len(tab.infos) == 2 and tab.warning.isVisible())
        assert [d.name for d in ws.repo.devices.devices] == ["main", "same-disk"]


def test_settings_dialog_renames_and_sets_weight_and_tier(
    qtbot, cluster: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import_paths(cluster, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    with _window(qtbot, cluster) as win:
        tab = win.devices_tab
        _idle(qtbot, win, lambda: len(tab.infos) == 4)
        tab.table.selectRow(_row(win, "d1"))
        tab.settings_button.click()
        qtbot.waitUntil(lambda: tab.settings_dialog is not None and tab.settings_dialog.isVisible())
        dialog = tab.settings_dialog
        assert dialog is not None
        dialog.name.setText("")
        assert not dialog.save_button.isEnabled()  # a name is required
        dialog.name.setText("fast")
        dialog.weight.setValue(2.5)
        dialog.tier.setCurrentText("cold")
        dialog.save_button.click()
        _idle(qtbot, win, lambda: any(i.device.name == "fast" for i in tab.infos))
        fast = cluster.repo.devices.get("fast")
        assert (fast.weight, fast.tier, fast.path) == (2.5, "cold", str(tmp_path / "dev1"))
        identity = read_identity(tmp_path / "dev1")
        assert identity is not None
        assert identity["name"] == "fast"
        row = _row(win, "fast")
        assert [tab.table.item(row, c).text() for c in (2, 3)] == ["cold", "2.5"]
        assert scrub(cluster).ok

        tab.table.selectRow(_row(win, "main"))  # main keeps its name
        tab.settings_button.click()
        qtbot.waitUntil(lambda: tab.settings_dialog is not dialog)
        assert tab.settings_dialog is not None
        assert not tab.settings_dialog.name.isEnabled()
        tab.settings_dialog.reject()


def test_removing_a_dead_device_is_previewed_then_repair_restores_the_policy(
    qtbot, cluster: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    set_policy(cluster, "copies=2")
    import_paths(cluster, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    held = [p for p in (tmp_path / "dev2").rglob("*") if p.is_file() and "chunks" in p.parts]
    assert held
    shutil.rmtree(tmp_path / "dev2")  # the disk died
    with _window(qtbot, cluster) as win:
        tab = win.devices_tab
        _idle(qtbot, win, lambda: len(tab.infos) == 4)
        assert tab.infos[_row(win, "d2")].status == "missing"
        assert tab.table.cellWidget(_row(win, "d2"), USAGE).text() == "not mounted"
        tab.table.selectRow(_row(win, "d2"))
        tab.remove_button.click()
        qtbot.waitUntil(lambda: tab.forget_dialog is not None and tab.forget_dialog.isVisible())
        dialog = tab.forget_dialog
        assert dialog is not None
        plan = dialog.plan
        assert (plan.lost, plan.under_replicated) == (0, len(held))
        text = dialog.preview.text()
        under = f"{len(held)} chunks become under-replicated until Repair (models: acme/tiny)"
        assert under in text
        assert "No chunk is lost" in text
        assert not dialog.confirm.isVisible()
        assert [d.name for d in cluster.repo.devices.devices] == ["main", "d0", "d1", "d2"]
        dialog.remove_button.click()
        _idle(qtbot, win, lambda: len(tab.infos) == 3)
        assert [d.name for d in cluster.repo.devices.devices] == ["main", "d0", "d1"]
        report = scrub(cluster)
        assert (len(report.under_replicated), report.lost) == (len(held), ())
        said = f"Removed device d2: {len(held)} chunks below policy until Repair."
        assert tab.removed.text() == said
        assert tab.repair_button.isVisible()
        tab.repair_button.click()
        _idle(qtbot, win, lambda: not tab.repair_button.isVisible())
        assert scrub(cluster).ok


def test_removing_the_only_copies_needs_an_explicit_confirmation(
    qtbot, cluster: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import_paths(cluster, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    set_device(cluster, "d0", state="offline")  # failing disk, the only copies of its chunks
    only = [p for p in (tmp_path / "dev0").rglob("*") if p.is_file() and "chunks" in p.parts]
    assert only
    with _window(qtbot, cluster) as win:
        tab = win.devices_tab
        _idle(qtbot, win, lambda: len(tab.infos) == 4)
        tab.table.selectRow(_row(win, "d0"))
        tab.remove_button.click()
        qtbot.waitUntil(lambda: tab.forget_dialog is not None and tab.forget_dialog.isVisible())
        dialog = tab.forget_dialog
        assert dialog is not None
        assert dialog.plan.lost == len(only)
        assert f"\nLOST: {len(only)} chunks of acme/tiny (1 version: acme/tiny@1)" in (
            dialog.preview.text()
        )
        assert "\\n" not in dialog.preview.text()  # one line each, not an escaped newline
        assert "acme/tiny@1" in dialog.preview.text()
        assert not dialog.remove_button.isEnabled()  # refused until the loss is confirmed
        dialog.confirm.click()
        assert dialog.remove_button.isEnabled()
        dialog.remove_button.click()
        _idle(qtbot, win, lambda: len(tab.infos) == 3)
        assert "d0" not in [d.name for d in cluster.repo.devices.devices]
        assert len(scrub(cluster).lost) == len(only)


def test_hot_column_shows_the_bytes_a_pin_keeps_on_the_hot_device(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import_paths(ws, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "m")
    set_device(ws, "main", tier="cold")
    add_device(ws, tmp_path / "fast", name="fast", tier="hot")
    pin(ws, "m@1")
    on_disk = sum(p.stat().st_size for p in (tmp_path / "fast" / "hot").rglob("*") if p.is_file())
    with _window(qtbot, ws) as win:
        table = win.devices_tab.table
        assert table.horizontalHeaderItem(HOT).text() == "Hot"
        assert table.item(_row(win, "fast"), HOT).text() == human_bytes(on_disk)
        assert table.item(_row(win, "main"), HOT).text() == "-"
