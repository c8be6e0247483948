"""Model menu from the window: Redundancy policy… previews, applies copies=2 (scrub is clean and
every chunk has two copies, the Overview says so), refuses copies=5 on two devices with the
service's line and changes nothing; Codec… sets the codec new chunks get."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from modelmanager.core.units import human_bytes
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.gui.policy_dialogs import CodecDialog, PolicyDialog
from modelmanager.services import Workspace
from modelmanager.services.devices import add_device, preview_policy
from modelmanager.services.importing import import_paths
from modelmanager.services.redundancy import scrub
from tests.gui.test_main_window import _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder

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
    assert "Survives losing 1 device." in text, text
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
