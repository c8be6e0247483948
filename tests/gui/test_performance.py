"""The Performance tab: benchmark jobs, charts whose data is the stored results, exports."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from matplotlib.container import BarContainer
from PySide6.QtCore import QStandardPaths

from modelmanager.core.chunks.selection import STRATEGIES
from modelmanager.gui import TABS
from modelmanager.gui.charts import CHARTS, draw
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace
from modelmanager.services.benchmark import run_benchmark
from modelmanager.services.importing import import_paths
from tests.gui.test_main_window import _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder

QStandardPaths.setTestModeEnabled(True)


@pytest.fixture
def window(qtbot, ws: Workspace, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    import_paths(ws, [hf_folder(tmp_path / "tiny", np.random.default_rng(2))], "tiny")
    with shown_window(qtbot, ws, tab=TABS.index("performance")) as win:
        yield win


def _bars(win: MainWindow, chart: str) -> list[list[float]]:
    ax = win.performance_tab.figures[chart].axes[0]
    return [[b.get_height() for b in c] for c in ax.containers if isinstance(c, BarContainer)]


def test_charts_draw_the_stored_measurements(qtbot, window: MainWindow, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    tab = window.performance_tab
    assert tab.summary.text() == "No benchmark yet"
    report = run_benchmark(ws, "tiny", threads=(1, 2, 4))
    tab.refresh()
    qtbot.waitUntil(lambda: len(tab.rows) == len(report.rows))
    mbps = {(r.kind, r.device, r.cache, r.strategy, r.threads): r.throughput / 1e6
            for r in report.rows}  # fmt: skip
    cold, warm = _bars(window, "devices")
    assert cold == pytest.approx([mbps[("device", "main", "cold", "", 1)]])
    assert warm == pytest.approx([mbps[("device", "main", "warm", "", 1)]])
    (line,) = tab.figures["threads"].axes[0].get_lines()
    assert list(line.get_xdata()) == [1, 2, 4]
    assert list(line.get_ydata()) == pytest.approx(
        [mbps[("threads", "", "warm", "", n)] for n in (1, 2, 4)]
    )
    (strategies,) = _bars(window, "strategies")
    assert strategies == pytest.approx([mbps[("strategy", "", "cold", s, 0)] for s in STRATEGIES])
    labels = [t.get_text() for t in tab.figures["strategies"].axes[0].get_xticklabels()]
    assert labels == list(STRATEGIES)
    history = tab.figures["history"].axes[0].get_lines()
    assert {ln.get_label() for ln in history} == {"main", "whole load"}
    low, high = tab.figures["history"].axes[0].get_xlim()
    assert high - low == pytest.approx(1 / 24)  # one run: an hour around it, not years
    assert "1 run stored; loads use strategy" in tab.summary.text()


def test_run_benchmark_is_a_job_that_adds_a_run(qtbot, window: MainWindow, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    tab = window.performance_tab
    assert tab.run_benchmark() is None  # nothing selected: says so instead
    _select(qtbot, window, "tiny@1")
    with qtbot.waitSignal(window.runner.succeeded, timeout=60_000):
        job = tab.run_benchmark()
    assert job is not None
    assert job.title == "Benchmark tiny@1"
    qtbot.waitUntil(lambda: bool(tab.rows))
    assert {r.run for r in tab.rows} == {r.run for r in ws.catalog.bench_rows()}
    assert window.jobs_table.rowCount() >= 1
    warm = tab.keep_warm()
    assert warm is not None
    # Not waitSignal(succeeded): any job's success (a background read) would end that wait.
    qtbot.waitUntil(lambda: not warm.active, timeout=30_000)
    assert "now in memory" in window.statusBar().currentMessage()


def test_each_chart_saves_as_png_and_the_data_as_csv(qtbot, window: MainWindow, ws: Workspace,
                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    run_benchmark(ws, "tiny", threads=(1,))
    tab = window.performance_tab
    tab.refresh()
    qtbot.waitUntil(lambda: bool(tab.rows))
    for chart in CHARTS:
        tab.save_png(chart, tmp_path / f"{chart}.png")
        assert (tmp_path / f"{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from modelmanager.gui.charts import write_csv

    assert write_csv(tab.rows, tmp_path / "b.csv") == len(tab.rows)
    with open(tmp_path / "b.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["kind"] for r in table] == [r.kind for r in tab.rows]
    assert all(int(r["bytes_per_second"]) > 0 for r in table)


def test_an_empty_history_draws_a_hint_not_an_error() -> None:
    from matplotlib.figure import Figure

    for chart in CHARTS:
        fig = Figure()
        draw(fig, chart, [])
        assert "No benchmark yet" in fig.axes[0].texts[0].get_text()


def test_charts_wait_until_the_tab_is_shown(qtbot, window: MainWindow, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    window.tabs.setCurrentIndex(TABS.index("overview"))
    run_benchmark(ws, "tiny", threads=(1,))
    tab = window.performance_tab
    tab.refresh()
    qtbot.waitUntil(lambda: bool(tab.rows))
    assert tab._stale  # hidden: nothing drawn on the UI thread yet
    window.tabs.setCurrentIndex(TABS.index("performance"))
    assert not tab._stale
    assert _bars(window, "strategies")
