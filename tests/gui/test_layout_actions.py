"""Shard layout you can act on, through the real widgets: a clicked cell shows its chunk
(tensors, size, codec, every piece with its device's state, as ``chunk_details`` reads them);
"Go to next degraded" scrolls to and selects a damaged chunk far off-screen; "Repair this model"
runs the repair job, after which the layout and scrub are clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from modelmanager.core.chunks.store import chunk_key
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace
from modelmanager.services.chunk_info import chunk_details
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import scrub, version_layout
from tests.gui.test_main_window import _select
from tests.gui.windows import shown_window
from tests.support.builders import write_safetensors


@pytest.fixture
def damaged(ws: Workspace, tmp_path: Path) -> tuple[Workspace, str]:
    """big@1 (about 10 MiB, 150-odd chunks) kept twice; d0 lost its copy of the last chunk."""
    rng = np.random.default_rng(3)
    tensors = {f"w{i:02}": rng.standard_normal(64 * 1024).astype(np.float32) for i in range(40)}
    src = write_safetensors(tmp_path / "src" / "model.safetensors", tensors)
    import_paths(ws, [src.parent], "big")
    add_device(ws, tmp_path / "d0", name="d0")
    set_policy(ws, "copies=2", "big")
    last = version_layout(ws, "big@1").chunks[-1].chunk_id
    (tmp_path / "d0" / chunk_key(last)).unlink()
    return ws, last


@pytest.fixture
def window(qtbot, damaged: tuple[Workspace, str]) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, damaged[0]) as win:
        _select(qtbot, win, "big@1")
        win.tabs.setCurrentWidget(win.layout_tab)
        qtbot.waitUntil(lambda: win.layout_tab.grid.layout_data is not None)
        yield win


def test_a_clicked_cell_shows_its_chunk(qtbot, window: MainWindow, damaged) -> None:  # type: ignore[no-untyped-def]
    ws, _last = damaged
    tab = window.layout_tab
    data = tab.grid.layout_data
    assert data is not None
    qtbot.mouseClick(tab.grid, Qt.MouseButton.LeftButton, pos=tab.grid.cell_rect(0, 3).center())
    assert tab.grid.selected == 3
    qtbot.waitUntil(lambda: tab.shown_details is not None)
    expected = chunk_details(ws, "big@1", data.chunks[3].chunk_id)
    assert tab.shown_details == expected
    text = tab.details.toPlainText()
    assert text.startswith(f"Chunk 4 of {len(data.chunks)}: {expected.chunk_id[:16]}")
    assert f"codec {expected.codec}" in text
    assert expected.tensors
    for tensor in expected.tensors:
        assert tensor in text  # "model.safetensors: w00", ...
    assert "d0: copy (device online)" in text
    assert text.count(": copy (device online)") == 2  # two copies, two devices


def test_next_degraded_scrolls_to_it_and_repair_makes_it_clean(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, damaged
) -> None:
    ws, last = damaged
    tab = window.layout_tab
    data = tab.grid.layout_data
    assert data is not None
    col = [c.chunk_id for c in data.chunks].index(last)
    assert "1 degraded" in tab.summary.text()
    viewport = tab.scroll_area.viewport()

    def on_screen() -> bool:
        x = tab.grid.mapTo(viewport, tab.grid.cell_rect(0, col).center()).x()
        return 0 <= x < viewport.width()

    assert not on_screen()  # far to the right at first
    assert tab.next_button.isEnabled()
    tab.next_button.click()
    assert tab.grid.selected == col
    assert on_screen()
    qtbot.waitUntil(lambda: tab.shown_details is not None)
    assert "degraded" in tab.details.toPlainText().splitlines()[0]
    assert tab.repair_button.isEnabled()
    assert not scrub(ws).ok

    tab.repair_button.click()
    qtbot.waitUntil(lambda: window.health.dialog is not None, timeout=20_000)
    assert window.health.dialog.report.ok  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: "0 degraded" in tab.summary.text(), timeout=10_000)
    assert not tab.next_button.isEnabled()
    assert not tab.repair_button.isEnabled()
    assert scrub(ws).ok
    # the selected chunk stays selected across the refresh, now with both copies
    assert tab.grid.selected == col
    qtbot.waitUntil(lambda: tab.shown_details is not None and len(tab.shown_details.pieces) == 2)
