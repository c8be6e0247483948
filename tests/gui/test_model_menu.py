"""Model menu from the window: Redundancy policy… previews, applies copies=2 (scrub is clean and
every chunk has two copies, the Overview says so) and ec=2+1 (three fragments, no copy),
refuses copies=5 on two devices with the service's line and changes nothing; Codec… sets the
codec new chunks get; Recompress… shows the stored size it leaves, then leaves exactly that;
Remove all versions… previews versions, labels and bytes, then removes the model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from modelmanager.core.codecs import CodecSettings
from modelmanager.core.units import human_bytes
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.gui.policy_dialogs import CodecDialog, PolicyDialog, plan_text
from modelmanager.gui.recompress_dialog import RecompressDialog
from modelmanager.services import Workspace, history
from modelmanager.services.devices import add_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import stats, verify
from modelmanager.services.policies import preview_policy
from modelmanager.services.recompress import preview_recompress
from modelmanager.services.redundancy import scrub
from tests.gui.windows import select_ref as _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder, tree_bytes

REF = "acme/tiny@1"


def _model_action(win: MainWindow, text: str) -> object:
    [menu] = [a.menu() for a in win.menuBar().actions() if a.text() == "M&odel"]
    found = [a for a in menu_actions(menu) if a.text().replace("&", "") == text]  # type: ignore[arg-type]
    assert found, text
    return found[0]


@pytest.fixture
def one_copy(ws: Workspace, tmp_path: Path) -> Workspace:
    """acme/tiny@1 kept once (copies=1), with a second device d0 added afterwards."""
    import_paths(ws, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    add_device(ws, tmp_path / "d0", name="d0")
    return ws


@pytest.fixture
def window(qtbot, one_copy: Workspace) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, one_copy) as win:
        _select(qtbot, win, REF)
        yield win


def _policy_dialog(qtbot, win: MainWindow) -> PolicyDialog:  # type: ignore[no-untyped-def]
    _model_action(win, "Redundancy policy…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: win.model_actions.policy_dialog is not None)
    dialog = win.model_actions.policy_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    return dialog


def _copies(ws: Workspace) -> list[int]:
    """How many devices hold a whole copy of each chunk of acme/tiny@1."""
    ids = ws.repo.read_manifest("acme/tiny", 1).chunk_ids()
    ws.repo.chunks.refresh()
    return [len({d.id for d in ws.repo.chunks.locate(cid).copies}) for cid in sorted(ids)]


def test_copies_2_previewed_then_applied(qtbot, window: MainWindow, one_copy: Workspace) -> None:  # type: ignore[no-untyped-def]
    ws = one_copy
    assert set(_copies(ws)) == {1}
    expected = preview_policy(ws, "copies=2", "acme/tiny")  # what `policy set --dry-run` says
    assert expected.write_bytes > 0
    dialog = _policy_dialog(qtbot, window)
    assert dialog.model == "acme/tiny"
    dialog.copies.setValue(2)
    qtbot.waitUntil(lambda: dialog.apply_button.isEnabled())
    text = dialog.preview.text()
    assert human_bytes(expected.write_bytes) in text, text
    assert f"{expected.write_pieces} piece" in text, text
    # what it survives counts file systems: tmp_path's device folders share one disk
    assert text == plan_text(expected)
    assert set(_copies(ws)) == {1}  # the preview changed nothing

    dialog.apply_button.click()
    qtbot.waitUntil(lambda: window.model_actions.dialog is not None, timeout=20_000)
    report = window.model_actions.dialog
    assert report is not None
    assert report.isVisible()
    assert report.report.ok, report.report.summary
    assert "copies=2" in report.report.summary
    assert scrub(ws).ok
    assert set(_copies(ws)) == {2}
    assert str(ws.repo.policy_for("acme/tiny")) == "copies=2"
    qtbot.waitUntil(lambda: window.overview_tab.ov["Redundancy"].text() == "copies=2")


def test_impossible_policy_refused_in_the_dialog(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, one_copy: Workspace
) -> None:
    ws = one_copy
    before = (str(ws.repo.policy_for("acme/tiny")), _copies(ws))
    dialog = _policy_dialog(qtbot, window)
    dialog.copies.setValue(5)
    message = "policy copies=5 needs 5 devices that can take data; the repository has 2"
    qtbot.waitUntil(lambda: dialog.preview.text().startswith(message))
    assert "\n" not in dialog.preview.text()
    assert not dialog.apply_button.isEnabled()
    dialog.apply_button.click()  # disabled: nothing happens
    qtbot.waitUntil(lambda: not window.runner.running())
    assert window.model_actions.dialog is None
    assert (str(ws.repo.policy_for("acme/tiny")), _copies(ws)) == before
    assert dialog.isVisible()


def test_codec_dialog_sets_the_model_codec(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, one_copy: Workspace
) -> None:
    ws = one_copy
    assert ws.repo.codec_for("acme/tiny").name != "zstd"
    _model_action(window, "Codec…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.model_actions.codec_dialog is not None)
    dialog = window.model_actions.codec_dialog
    assert isinstance(dialog, CodecDialog)
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.model == "acme/tiny"
    dialog.codec.setCurrentIndex(dialog.codec.findData("zstd"))
    dialog.level.setValue(5)
    dialog.apply_button.click()
    qtbot.waitUntil(lambda: ws.repo.codec_for("acme/tiny").name == "zstd")
    assert ws.repo.codec_for("acme/tiny").level == 5
    qtbot.waitUntil(lambda: "zstd" in window.statusBar().currentMessage())
    # the repository default is unchanged: only the model was set
    assert ws.repo.policies.codecs.get("*") is None


def test_ec_apply_writes_fragments_and_scrub_is_clean(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, one_copy: Workspace, tmp_path: Path
) -> None:
    ws = one_copy
    add_device(ws, tmp_path / "d1", name="d1")  # three devices: ec=2+1 fits
    dialog = _policy_dialog(qtbot, window)
    dialog.kind.setCurrentIndex(dialog.kind.findData("ec"))
    dialog.data.setValue(2)
    dialog.parity.setValue(1)
    qtbot.waitUntil(lambda: dialog.apply_button.isEnabled() and dialog.policy() == "ec=2+1")
    dialog.apply_button.click()
    qtbot.waitUntil(lambda: window.model_actions.dialog is not None, timeout=20_000)
    assert window.model_actions.dialog.report.ok  # type: ignore[union-attr]
    assert str(ws.repo.policy_for("acme/tiny")) == "ec=2+1"
    ws.repo.chunks.refresh()
    for cid in ws.repo.read_manifest("acme/tiny", 1).chunk_ids():
        layout = ws.repo.chunks.locate(cid)
        assert not layout.copies  # the whole copy is gone ...
        frags = layout.fragments[(2, 1)]  # ... for three fragments on three devices
        assert sorted(frags) == [0, 1, 2]
        assert len({d.id for devs in frags.values() for d in devs}) == 3
    assert scrub(ws).ok


@pytest.fixture
def raw_stored(ws: Workspace, tmp_path: Path) -> Workspace:
    """acme/tiny@1 and @2 stored uncompressed (codec raw)."""
    for n in (1, 2):
        src = hf_folder(tmp_path / f"src{n}", np.random.default_rng(n))
        import_paths(ws, [src], "acme/tiny", codec=CodecSettings("raw"))
    return ws


def test_recompress_previews_the_stored_size_then_reencodes(  # type: ignore[no-untyped-def]
    qtbot, raw_stored: Workspace, tmp_path: Path
) -> None:
    ws = raw_stored
    expected = preview_recompress(ws, ["acme/tiny@2", "acme/tiny@1"], CodecSettings("zstd"))
    assert expected.stored_after < expected.stored_before == stats(ws).stored_bytes
    with shown_window(qtbot, ws) as win:
        _select(qtbot, win, "acme/tiny@2")
        _model_action(win, "Recompress…").trigger()  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: win.model_actions.recompress_dialog is not None)
        dialog = win.model_actions.recompress_dialog
        assert isinstance(dialog, RecompressDialog)
        assert dialog.refs == ["acme/tiny@2", "acme/tiny@1"]
        dialog.codec.setCurrentIndex(dialog.codec.findData("zstd"))
        qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=20_000)
        text = dialog.preview.text()
        assert f"after {human_bytes(expected.stored_after)}" in text, text
        assert f"stored now {human_bytes(expected.stored_before)}" in text, text
        assert stats(ws).stored_bytes == expected.stored_before  # the preview wrote nothing
        dialog.start_button.click()
        qtbot.waitUntil(lambda: win.model_actions.dialog is not None, timeout=30_000)
        assert "Recompressed acme/tiny with zstd" in win.model_actions.dialog.report.summary  # type: ignore[union-attr]
    assert stats(ws).stored_bytes == expected.stored_after  # what the preview said
    assert verify(ws).ok
    out = tmp_path / "out"
    export_ref(ws, "acme/tiny@1", out)
    assert tree_bytes(out) == tree_bytes(tmp_path / "src1")


def test_remove_all_versions_previews_then_removes_the_model(  # type: ignore[no-untyped-def]
    qtbot, raw_stored: Workspace
) -> None:
    ws = raw_stored
    history.set_label(ws, "acme/tiny@2", "prod")
    plan = history.plan_removal(ws, ["acme/tiny@1", "acme/tiny@2"])
    with shown_window(qtbot, ws) as win:
        _select(qtbot, win, "acme/tiny@2")
        _model_action(win, "Remove all versions…").trigger()  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: win.cleanup.box is not None and win.cleanup.box.isVisible())
        box = win.cleanup.box
        assert box is not None
        text = box.text()
        assert "Remove acme/tiny@1, acme/tiny@2?" in text, text
        assert human_bytes(plan.freed_bytes).replace(" ", "\u00a0") in text, text
        assert "acme/tiny@prod" in text
        assert "No version of acme/tiny is left." in text
        assert ws.repo.model_names() == ["acme/tiny"]  # the preview removed nothing
        [go] = [b for b in box.buttons() if b.text() == "Remove"]
        go.click()
        qtbot.waitUntil(lambda: not ws.catalog.versions("acme/tiny"), timeout=20_000)
        qtbot.waitUntil(lambda: win.imports.existing_models() == [])
    assert ws.repo.model_names() == []
    assert stats(ws).stored_bytes == 0
