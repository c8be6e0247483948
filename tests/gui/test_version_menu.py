"""Version menu from the window: Export… (byte for byte, overwrite asked), Verify, Copy
reference, Label… (add, move, remove); each through the real actions, dialogs and buttons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox, QMenu, QMessageBox

from modelmanager.core.ids import content_id
from modelmanager.gui.hot_tier_dialog import HotTierDialog
from modelmanager.gui.jobs_bridge import DONE
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.report_dialog import ReportDialog
from modelmanager.services import Workspace, history, remotes
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.pin_records import note_use, pin_key, pins
from modelmanager.services.pinning import pin
from modelmanager.services.redundancy import scrub
from modelmanager.services.remotes import add_remote
from tests.gui.windows import select_ref as _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder, tree_bytes
from tests.support.mounts import small_tmpfs


@pytest.fixture
def sources(ws: Workspace, tmp_path: Path) -> dict[str, Path]:
    out = {}
    for n, labels in ((1, ["prod"]), (2, [])):
        src = hf_folder(tmp_path / f"src{n}", np.random.default_rng(n), shards=2)
        out[import_paths(ws, [src], "acme/tiny", labels=labels).manifest.ref] = src
    return out


@pytest.fixture
def window(qtbot, ws: Workspace, sources: dict[str, Path]) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, ws) as win:
        yield win


def _action(win: MainWindow, text: str) -> object:
    found = [a for a in win.version_actions if a.text().replace("&", "") == text]
    assert found, [a.text() for a in win.version_actions]
    return found[0]


def _new_report(qtbot, win: MainWindow, before: ReportDialog | None) -> ReportDialog:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: win.versions.dialog not in (None, before))
    dialog = win.versions.dialog
    assert dialog is not None
    assert dialog.isVisible()
    return dialog


def test_version_actions_wait_for_a_version(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    assert not any(a.isEnabled() for a in window.version_actions)
    _select(qtbot, window, "acme/tiny@1")
    assert all(a.isEnabled() for a in window.version_actions)


def test_export_writes_every_file_byte_for_byte_and_asks_before_overwriting(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, sources: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    _select(qtbot, window, "acme/tiny@1")
    dest = tmp_path / "out"
    dest.mkdir()
    _action(window, "Export…").trigger()  # type: ignore[attr-defined]
    chooser = window.versions.chooser
    assert chooser is not None
    qtbot.waitUntil(chooser.isVisible)
    chooser.selectFile(str(dest))
    chooser.accept()
    dialog = _new_report(qtbot, window, None)
    assert tree_bytes(dest) == tree_bytes(sources["acme/tiny@1"])
    assert dialog.summary.text().startswith("Exported acme/tiny@1: ")
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    dialog.buttons["Open folder"].click()
    assert opened == [str(dest)]
    job = next(j for j in window.runner.jobs.values() if j.title.startswith("Export"))
    assert job.state == "done"
    assert job.done == job.total > 0

    # The folder holds files now: nothing is written until Overwrite is pressed.
    (dest / "config.json").write_text("changed")
    window.versions.export("acme/tiny@2", dest)
    box = window.versions.box
    assert box is not None
    assert "not empty" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert (dest / "config.json").read_text() == "changed"
    window.versions.export("acme/tiny@2", dest)
    box2 = window.versions.box
    assert box2 is not box
    assert box2 is not None
    [go] = [b for b in box2.buttons() if b.text() == "Overwrite"]
    go.click()
    _new_report(qtbot, window, dialog)
    assert tree_bytes(dest) == tree_bytes(sources["acme/tiny@2"])


def test_verify_and_copy_reference(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    _select(qtbot, window, "acme/tiny@2")
    _action(window, "Verify").trigger()  # type: ignore[attr-defined]
    dialog = _new_report(qtbot, window, None)
    assert dialog.report.ok
    assert dialog.summary.text().startswith("Full verify of acme/tiny@2: all good (1 version, ")
    _action(window, "Copy reference").trigger()  # type: ignore[attr-defined]
    assert QGuiApplication.clipboard().text() == "acme/tiny@2"


def test_label_adds_moves_and_removes(qtbot, window: MainWindow, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    _select(qtbot, window, "acme/tiny@2")

    def dialog_after(before: object) -> object:
        _action(window, "Label…").trigger()  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: window.versions.label_dialog not in (None, before))
        return window.versions.label_dialog

    d = dialog_after(None)
    d.name.setCurrentText("prod")  # type: ignore[attr-defined]
    assert "names version 1 now; Set here moves it to acme/tiny@2" in d.note.text()  # type: ignore[attr-defined]
    d.set_button.click()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: ws.repo.read_labels("acme/tiny") == {"prod": 2})
    d2 = dialog_after(d)
    d2.name.setCurrentText("rc1")  # type: ignore[attr-defined]
    assert not d2.remove_button.isEnabled()  # type: ignore[attr-defined]
    d2.set_button.click()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: ws.repo.read_labels("acme/tiny") == {"prod": 2, "rc1": 2})
    d3 = dialog_after(d2)
    d3.name.setCurrentText("prod")  # type: ignore[attr-defined]
    assert not d3.set_button.isEnabled()  # type: ignore[attr-defined]  # already here
    d3.remove_button.click()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: ws.repo.read_labels("acme/tiny") == {"rc1": 2})
    last = ws.repo.label_log("acme/tiny")[-1]  # the removal is journaled, as the CLI's is
    assert "prod" in str(last)
    # The window follows: History shows the version's labels as they are now.
    qtbot.waitUntil(lambda: window.details is not None and
                    window.details.manifest.ref == "acme/tiny@2")  # fmt: skip


def _choose(qtbot, win: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    """Pick ``text`` in the last "which version / remote" list and press its OK button."""
    qtbot.waitUntil(lambda: win.versions.chooser_box is not None)
    box = win.versions.chooser_box
    assert box is not None
    qtbot.waitUntil(box.isVisible)
    box.setTextValue(text)
    buttons = box.findChild(QDialogButtonBox)
    assert buttons is not None
    buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def test_diff_with_another_version_shows_the_diff_in_history(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace
) -> None:
    _select(qtbot, window, "acme/tiny@2")
    _action(window, "Diff with…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.versions.chooser_box is not None)
    box = window.versions.chooser_box
    assert box is not None
    assert box.comboBoxItems() == ["acme/tiny@1"]  # the other versions only
    _choose(qtbot, window, "acme/tiny@1")
    qtbot.waitUntil(lambda: bool(getattr(window.history, "diff_text", "")))
    d = history.diff_refs(ws, "acme/tiny@1", "acme/tiny@2")  # what `diff` prints
    first = window.history.diff_text.splitlines()[0]
    assert first.startswith("acme/tiny@1 -> acme/tiny@2: ")
    assert f"{d.count('changed')} changed" in first


def test_push_to_a_chosen_remote_sends_the_version(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    add_remote("shared", f"file://{tmp_path / 'shared'}")
    add_remote("backup", f"file://{tmp_path / 'backup'}")
    _select(qtbot, window, "acme/tiny@1")
    _action(window, "Push to…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.versions.chooser_box is not None)
    assert window.versions.chooser_box.comboBoxItems() == ["backup", "shared"]  # type: ignore[union-attr]
    _choose(qtbot, window, "backup")
    qtbot.waitUntil(lambda: any(j.title == "Push acme/tiny@1 to backup" and j.state == DONE
                                for j in window.runner.jobs.values()), timeout=30_000)  # fmt: skip
    pushed = remotes.list_versions(remotes.open_remote("backup"))
    assert [(v.model, v.seq) for v in pushed] == [("acme/tiny", 1)]
    assert remotes.list_versions(remotes.open_remote("shared")) == []


def test_label_dialog_lists_the_label_journal(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace
) -> None:
    _select(qtbot, window, "acme/tiny@2")
    _action(window, "Label…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.versions.label_dialog is not None)
    first = window.versions.label_dialog
    assert first is not None
    assert first.journal.count() == len(ws.repo.label_log("acme/tiny"))
    first.reject()
    history.set_label(ws, "acme/tiny@2", "prod")  # a move: journaled
    _action(window, "Label…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.versions.label_dialog not in (None, first))
    dialog = window.versions.label_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.journal.isVisible()
    newest = dialog.journal.item(0).text()
    assert "prod: @1 -> @2" in newest, newest


def _version_menu(win: MainWindow) -> QMenu:
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Version")
    assert isinstance(menu, QMenu)
    return menu


def _opened(qtbot, win: MainWindow) -> QMenu:  # type: ignore[no-untyped-def]
    """The Version menu as it opens (its pin state is read then: the offscreen platform
    warns on a real popup), once the read is done."""
    menu = _version_menu(win)
    menu.aboutToShow.emit()
    qtbot.waitUntil(lambda: not win.runner.running())
    return menu


def test_pin_hot_and_unpin_from_the_version_menu(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    set_device(ws, "main", tier="cold")
    add_device(ws, tmp_path / "fast", name="fast", tier="hot")
    _select(qtbot, window, "acme/tiny@1")
    _opened(qtbot, window)
    pin_act = _action(window, "Pin hot")
    unpin_act = _action(window, "Unpin")
    assert not pin_act.isChecked()  # type: ignore[attr-defined]
    assert not unpin_act.isEnabled()  # type: ignore[attr-defined]
    pin_act.trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: any(j.title == "Pin acme/tiny@1 hot" and j.state == DONE
                                for j in window.runner.jobs.values()), timeout=30_000)  # fmt: skip
    job = next(j for j in window.runner.jobs.values() if j.title == "Pin acme/tiny@1 hot")
    assert job.done == job.total > 0  # progress in bytes, to the end
    # The pin record and a verified plain copy of every chunk on the hot device.
    assert [p.ref for p in pins(ws.repo)] == ["acme/tiny@1"]
    chunks = {c.id: c.length for f in ws.repo.resolve("acme/tiny@1").files for c in f.chunks}
    hot = {p.name: p.read_bytes() for p in (tmp_path / "fast" / "hot").rglob("*") if p.is_file()}
    assert set(hot) == set(chunks)
    assert all(content_id(data) == cid for cid, data in hot.items())
    assert "Pinned acme/tiny@1 hot on fast" in window.statusBar().currentMessage()
    # The menu shows it: checked, saying since when, and Unpin offered.
    _opened(qtbot, window)
    qtbot.waitUntil(lambda: pin_act.text().startswith("Pinned &hot (since "))  # type: ignore[attr-defined]
    assert pin_act.isChecked()  # type: ignore[attr-defined]
    assert unpin_act.isEnabled()  # type: ignore[attr-defined]
    unpin_act.trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: not pins(ws.repo), timeout=30_000)
    assert ws.repo.records.read(pin_key("acme/tiny", 1))["pinned"] is False
    qtbot.waitUntil(lambda: pin_act.text() == "Pin &hot")  # type: ignore[attr-defined]
    assert not pin_act.isChecked()  # type: ignore[attr-defined]


def test_pin_past_the_fill_limit_asks_before_demoting(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    """A 512 KiB hot device (a real tmpfs) holds one version: pinning the other asks, names
    the version it demotes, and does nothing until "Pin and demote" is pressed."""
    with small_tmpfs(tmp_path / "fast", "512k") as fast:
        set_device(ws, "main", tier="cold")
        add_device(ws, fast, name="fast", tier="hot")
        pin(ws, "acme/tiny@1")
        _select(qtbot, window, "acme/tiny@2")

        def question() -> QMessageBox:
            before = window.versions.box
            _action(window, "Pin hot").trigger()  # type: ignore[attr-defined]
            qtbot.waitUntil(lambda: window.versions.box not in (None, before))
            box = window.versions.box
            assert box is not None
            assert "demotes acme/tiny@1 (least recently used)" in box.text()
            return box

        question().button(QMessageBox.StandardButton.Cancel).click()
        qtbot.waitUntil(lambda: not window.runner.running())
        assert [p.ref for p in pins(ws.repo)] == ["acme/tiny@1"]  # the preview changed nothing
        [go] = [b for b in question().buttons() if b.text() == "Pin and demote"]
        go.click()
        qtbot.waitUntil(lambda: [p.ref for p in pins(ws.repo)] == ["acme/tiny@2"], timeout=30_000)
        assert ws.repo.records.read(pin_key("acme/tiny", 1))["demoted"]
        hot = {p.name for p in (fast / "hot").rglob("*") if p.is_file()}
        assert hot == ws.repo.resolve("acme/tiny@2").chunk_ids()
        qtbot.waitUntil(lambda: not window.runner.running())
        assert "demoted acme/tiny@1" in window.statusBar().currentMessage()


def _maintenance_action(win: MainWindow, text: str) -> QAction:
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Maintenance")
    assert isinstance(menu, QMenu)
    found = [a for a in menu.actions() if a.text().replace("&", "") == text]
    assert found, [a.text() for a in menu.actions()]
    return found[0]


def test_apply_hot_tier_previews_then_promotes_the_recent_load(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    """Maintenance > Apply hot tier…: the dialog shows the plan (the version loaded recently
    promoted, bytes per device) and Cancel changes nothing; Apply runs it as a job that makes
    the hot copies and an automatic pin record, beside the user's pin."""
    with small_tmpfs(tmp_path / "fast", "4m") as fast:
        set_device(ws, "main", tier="cold")
        add_device(ws, fast, name="fast", tier="hot")
        pin(ws, "acme/tiny@1")
        note_use(ws.repo, "acme", 1)  # not a model here: ignored
        note_use(ws.repo, "acme/tiny", 2)
        act = _maintenance_action(window, "Apply hot tier…")
        pin_act = _action(window, "Pin hot")

        def preview() -> HotTierDialog:
            before = window.versions.hot_tier_dialog
            act.trigger()
            qtbot.waitUntil(lambda: window.versions.hot_tier_dialog not in (None, before))
            dialog = window.versions.hot_tier_dialog
            assert dialog is not None
            assert dialog.isVisible()
            return dialog

        dialog = preview()
        rows = [[getattr(dialog.versions.item(r, c), "text", str)() for c in range(4)]
                for r in range(dialog.versions.rowCount())]  # fmt: skip
        assert [r[:2] for r in rows] == [["Promote", "acme/tiny@2"], ["Keep hot", "acme/tiny@1"]]
        new = (
            ws.repo.resolve("acme/tiny@2").chunk_ids() - ws.repo.resolve("acme/tiny@1").chunk_ids()
        )
        assert dialog.plan.devices[0].write_bytes > 0
        device, copied = (getattr(dialog.devices.item(0, c), "text", str)() for c in (0, 1))
        assert device == "fast"
        assert copied.startswith(f"{len(new)} (")
        assert dialog.apply_button.isEnabled()
        dialog.reject()
        qtbot.waitUntil(lambda: not window.runner.running())
        assert [p.ref for p in pins(ws.repo)] == ["acme/tiny@1"]  # the preview changed nothing
        preview().apply_button.click()
        qtbot.waitUntil(lambda: any(j.title == "Apply hot tier" and j.state == DONE
                                    for j in window.runner.jobs.values()),
                        timeout=30_000)  # fmt: skip
        job = next(j for j in window.runner.jobs.values() if j.title == "Apply hot tier")
        assert job.done == job.total > 0  # progress in bytes, to the end
        assert [p.ref for p in pins(ws.repo)] == ["acme/tiny@1", "acme/tiny@2"]
        assert ws.repo.records.read(pin_key("acme/tiny", 2))["auto"] is True
        assert "auto" not in ws.repo.records.read(pin_key("acme/tiny", 1))
        hot = {p.name: p.read_bytes() for p in (fast / "hot").rglob("*") if p.is_file()}
        wanted = (
            ws.repo.resolve("acme/tiny@1").chunk_ids() | ws.repo.resolve("acme/tiny@2").chunk_ids()
        )
        assert set(hot) == wanted
        assert all(content_id(data) == cid for cid, data in hot.items())
        qtbot.waitUntil(lambda: not window.runner.running())
        assert "Hot tier applied: promoted acme/tiny@2" in window.statusBar().currentMessage()
        assert scrub(ws).ok
        # Settled: a second preview offers nothing to apply.
        assert not preview().apply_button.isEnabled()
        # The Version menu tells the promotion from a pin of the user's.
        _select(qtbot, window, "acme/tiny@2")
        _opened(qtbot, window)
        qtbot.waitUntil(lambda: pin_act.text().startswith("Pinned &hot (promoted since "))  # type: ignore[attr-defined]
