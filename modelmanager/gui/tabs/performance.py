"""The Performance tab: benchmark a version as a job, chart the stored results, export them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.catalog import BenchRow, best_strategy
from modelmanager.core.jobs import JobContext
from modelmanager.core.units import plural
from modelmanager.gui.charts import CHARTS, TITLES, draw, write_csv
from modelmanager.gui.context import WindowContext
from modelmanager.services.benchmark import run_benchmark
from modelmanager.services.loading import warm_version

if TYPE_CHECKING:
    from modelmanager.gui.jobs_bridge import JobRecord


class PerformanceTab(QWidget):
    """Four charts over the catalog's benchmark history, and the actions that add to it."""

    def __init__(self, context: WindowContext) -> None:
        super().__init__()
        self.context = context
        self.rows: list[BenchRow] = []
        self._stale = True  # charts are drawn when the tab is shown, not while it is hidden
        self.figures: dict[str, Figure] = {}
        self.canvases: dict[str, FigureCanvasQTAgg] = {}
        v = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.bench_button = QPushButton("Run benchmark")
        self.bench_button.setToolTip("Measure each device and load the selected version with "
                                     "every thread count and strategy (a job)")  # fmt: skip
        self.bench_button.clicked.connect(self.run_benchmark)
        self.warm_button = QPushButton("Keep warm")
        self.warm_button.setToolTip("Read the selected version into the OS page cache so its "
                                    "next load comes from memory")  # fmt: skip
        self.warm_button.clicked.connect(self.keep_warm)
        csv_button = QPushButton("Export CSV…")
        csv_button.clicked.connect(self.ask_csv)
        png_button = QPushButton("Export charts…")
        png_button.clicked.connect(self.ask_png_folder)
        self.summary = QLabel("No benchmark yet")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        for w in (self.bench_button, self.warm_button, csv_button, png_button):
            bar.addWidget(w)
        bar.addWidget(self.summary, 1)
        v.addLayout(bar)
        grid = QGridLayout()
        for n, chart in enumerate(CHARTS):
            fig = Figure(figsize=(5, 3), dpi=90)
            canvas = FigureCanvasQTAgg(fig)  # type: ignore[no-untyped-call]
            canvas.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            canvas.customContextMenuRequested.connect(lambda pos, c=chart: self._chart_menu(c, pos))
            canvas.setToolTip("Right-click to save this chart as PNG")
            self.figures[chart], self.canvases[chart] = fig, canvas
            grid.addWidget(canvas, n // 2, n % 2)
        v.addLayout(grid, 1)

    # -- data ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the stored results in the background, then redraw."""
        ws = self.context.ws
        read = lambda _ctx: ws.catalog.bench_rows()  # noqa: E731
        self.context.runner.submit("Read benchmark history", read, self.show_rows)

    def show_rows(self, rows: list[BenchRow]) -> None:
        self.rows = rows
        self._stale = True
        if self.isVisible():
            self._redraw()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self._redraw()

    def _redraw(self) -> None:
        """Draw every chart from ``rows`` (on the UI thread: about 50 ms a chart)."""
        self._stale = False
        palette = self.palette()
        back = palette.color(QPalette.ColorRole.Window).name()
        text = palette.color(QPalette.ColorRole.WindowText).name()
        for chart, fig in self.figures.items():
            draw(fig, chart, self.rows)
            fig.set_facecolor(back)
            for ax in fig.axes:
                ax.set_facecolor(back)
                ax.tick_params(colors=text)
                ax.title.set_color(text)
                ax.xaxis.label.set_color(text)
                ax.yaxis.label.set_color(text)
                for spine in ax.spines.values():
                    spine.set_color(text)
            self.canvases[chart].draw_idle()  # type: ignore[no-untyped-call]
        runs = len({r.run for r in self.rows})
        best = best_strategy(self.rows)
        self.summary.setText(
            f"{plural(runs, 'run')} stored; loads use strategy {best}"
            if runs
            else "No benchmark yet"
        )

    # -- actions ------------------------------------------------------------------------

    def run_benchmark(self) -> JobRecord | None:
        ref = self.context.current_ref
        if not ref:
            self.context.notify("Select a version to benchmark first", 8000)
            return None
        ws = self.context.ws

        def run(ctx: JobContext) -> list[BenchRow]:
            run_benchmark(ws, ref, ctx=ctx)
            return ws.catalog.bench_rows()

        return self.context.runner.submit(f"Benchmark {ref}", run, self.show_rows)

    def keep_warm(self) -> JobRecord | None:
        ref = self.context.current_ref
        if not ref:
            self.context.notify("Select a version to keep warm first", 8000)
            return None
        ws, context = self.context.ws, self.context
        return self.context.runner.submit(
            f"Keep {ref} warm", lambda ctx: warm_version(ws, ref, ctx),
            lambda n: context.notify(f"{ref}: {n / 1e6:.0f} MB now in memory", 10_000),
        )  # fmt: skip

    def _chart_menu(self, chart: str, pos: Any) -> None:
        menu = QMenu(self)
        menu.addAction("Save chart as PNG…", lambda: self.ask_png(chart))
        menu.popup(self.canvases[chart].mapToGlobal(pos))

    def save_png(self, chart: str, path: Path) -> None:
        self.figures[chart].savefig(path, dpi=120, facecolor=self.figures[chart].get_facecolor())

    def ask_png(self, chart: str) -> None:
        name, _ = QFileDialog.getSaveFileName(self, TITLES[chart], f"{chart}.png", "PNG (*.png)")
        if name:
            self.save_png(chart, Path(name))

    def ask_png_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save every chart as PNG into")
        if folder:
            for chart in CHARTS:
                self.save_png(chart, Path(folder) / f"{chart}.png")

    def ask_csv(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Benchmark results", "benchmarks.csv",
                                              "CSV (*.csv)")  # fmt: skip
        if name:
            n = write_csv(self.rows, Path(name))
            self.context.notify(f"{n} results written to {name}", 10_000)
