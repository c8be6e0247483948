"""The History tab: the shown model's versions (label, compare or remove them from its menu),
their lineage graph (parent links, and the models sharing tensors with the shown version; a
click opens one), and every move of its labels, from the label journal (who moved which label
when)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.analysis import VersionDiff
from modelmanager.core.analysis.lineage import StructureDiff, relative_text
from modelmanager.core.catalog import VersionRow
from modelmanager.core.jobs import JobContext
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, human_count, plural, signed_bytes
from modelmanager.errors import Cancelled, ModelManagerError
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT, JobRecord
from modelmanager.gui.lineage_graph import Graph, LineageView, read_graph
from modelmanager.gui.tabs.overview import plain_label
from modelmanager.services import history, lineage


def _read_only_rows(table: QTableWidget, headers: list[str]) -> None:
    """A table of whole-row, read-only records with these headers (both tables of the tab)."""
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setStretchLastSection(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.verticalHeader().setVisible(False)
    table.setWordWrap(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)


class HistoryTab(QTableWidget):
    """One row per version of the shown model, newest first; its actions run as jobs."""

    def __init__(
        self,
        context: WindowContext,
        remove: Callable[[list[str]], Any],
        select: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(0, 5)
        self.context = context
        self.remove = remove  # asks before removing versions (the window's cleanup)
        #: Opens a version or model in the window (a click on the lineage graph), if given.
        self.select = select
        self.shown_model: str | None = None  # whose versions the rows are
        self.versions: list[VersionRow] = []
        _read_only_rows(self, ["Version", "Created", "Labels", "Size", "Message"])
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.graph = LineageView()
        self.graph.activated.connect(self.open_ref)
        self.graph.became_visible.connect(self._graph_shown)
        self.graph_key: tuple[Any, ...] | None = None  # what the graph shows or is read for
        self.graph_stale = False  # the versions changed while the graph was hidden

    def show_versions(self, model: str | None, versions: Sequence[VersionRow]) -> None:
        """List ``versions`` of ``model`` (none: show no version); the lineage graph is read
        again when it is visible (else once its tab is opened)."""
        self.shown_model = model
        self.versions = list(versions)
        self.setRowCount(len(versions))
        for row, v in enumerate(versions):
            cells = [f"@{v.seq}", v.created[:19].replace("T", " "), ", ".join(v.labels),
                     human_bytes(v.logical_bytes), v.message]  # fmt: skip
            for col, text in enumerate(cells):
                self.setItem(row, col, QTableWidgetItem(shown(text)))
        self.graph_stale = True
        self.read_graph()

    def _graph_shown(self) -> None:
        if self.graph_stale:
            self.read_graph()

    def read_graph(self) -> JobRecord | None:
        """Read the lineage graph in a job (the shown version's relatives: up to 500 manifests,
        no chunk data), when the graph is visible; None when nothing was started."""
        model = self.shown_model
        if model is None or not self.versions:
            self.graph_key, self.graph_stale = None, False
            self.graph.show_text("No model is shown.")
            return None
        if not self.graph.isVisible():
            return None  # read when its tab is opened: Overview reads the relatives already
        ws, ref, versions = self.context.ws, self.context.current_ref, list(self.versions)
        key = (id(ws), model, ref, tuple((v.seq, v.parent, v.labels) for v in versions))
        self.graph_stale = False
        if key == self.graph_key:
            return None
        self.graph_key = key
        self.graph.show_text(f"Reading the lineage of {shown(ref or model)}…")

        def done(graph: Graph) -> None:
            if self.graph_key == key:
                self.graph.set_graph(graph)

        return self.context.runner.submit(
            f"Read lineage of {ref or model}",
            lambda _ctx: read_graph(ws, model, versions, ref),
            done,
        )

    def open_ref(self, ref: str) -> None:
        """A click on the lineage graph: select the version's row here when it is one of the
        shown model's, and open ``ref`` in the window."""
        for row in range(self.rowCount()):
            item = self.item(row, 0)
            if item is not None and f"{self.shown_model}{item.text()}" == ref:
                self.selectRow(row)
        if self.select is not None:
            self.select(ref)

    def selected_versions(self) -> list[str]:
        """References of the selected versions, newest first."""
        if self.shown_model is None:
            return []
        rows = sorted({i.row() for i in self.selectedIndexes()})
        items = [self.item(r, 0) for r in rows]
        return [f"{self.shown_model}{item.text()}" for item in items if item is not None]

    def _menu(self, pos: Any) -> None:
        refs = self.selected_versions()
        if not refs:
            return
        menu = QMenu(self)
        label = menu.addAction(f"Set label on {refs[0]}...")
        label.triggered.connect(lambda: self.ask_label(refs[0]))
        compare = menu.addAction("Compare the two selected versions")
        compare.setEnabled(len(refs) == 2)
        compare.triggered.connect(lambda: self.compare(refs[1], refs[0]))
        menu.addSeparator()
        what = refs[0] if len(refs) == 1 else plural(len(refs), "version")
        remove = menu.addAction(f"Remove {what}…")
        remove.triggered.connect(lambda: self.remove(refs))
        menu.popup(self.viewport().mapToGlobal(pos))

    def ask_label(self, ref: str) -> None:
        name, ok = QInputDialog.getText(self, "Set label", f"Label for {ref} (e.g. prod):")
        if ok and name.strip():
            self.move_label(ref, name.strip())

    def move_label(self, ref: str, label: str) -> JobRecord:
        """Point ``label`` at ``ref`` (a rollback when ``ref`` is older); undo is in the result."""
        ws, context = self.context.ws, self.context

        def run(_ctx: JobContext) -> history.LabelResult:
            return history.set_label(ws, ref, label, lock_timeout=GUI_LOCK_WAIT)

        def done(result: history.LabelResult) -> None:
            was = f" (was @{result.previous})" if result.previous else ""
            context.notify(f"{result.model}@{label} -> @{result.seq}{was}")
            context.apply_changes(ws, result.changes)

        return context.runner.submit(f"Label {ref} {label}", run, done, writes=ws.repo.root)

    def compare(self, older: str, newer: str) -> JobRecord:
        """Diff two versions in the background (the tensors, then the modules: only changed
        tensors are read, for their relative change) and show the result."""
        ws = self.context.ws

        def run(ctx: JobContext) -> tuple[VersionDiff, StructureDiff | None, str]:
            d = history.diff_refs(ws, older, newer)
            try:
                return d, lineage.structure(ws, older, newer, ctx), ""
            except Cancelled:
                raise
            except ModelManagerError as e:  # e.g. a chunk lost everywhere: still show the rest
                return d, None, e.message

        return self.context.runner.submit(f"Read diff {older} {newer}", run, self._show_diff)

    def _show_diff(self, result: tuple[VersionDiff, StructureDiff | None, str]) -> None:
        d, modules, why = result
        lines = [
            f"{d.a} -> {d.b}: {d.count('added')} added, {d.count('removed')} removed, "
            f"{d.count('changed')} changed, {d.unchanged_tensors} unchanged",
            f"size {signed_bytes(d.logical_delta)}",
            "",
        ]
        lines += [f"{t.status:8} {t.name}  {signed_bytes(t.byte_delta)}" for t in d.tensors[:200]]
        lines += [f"file {f.status:8} {f.path}" for f in d.files]
        if modules is not None:
            lines += ["", "modules:"]
            lines += [f"{m.status:8} {m.module or '(top level)'}  {m.parameters} parameters  "
                      f"{relative_text(m.relative)}" for m in modules.modules]  # fmt: skip
        elif why:
            lines += ["", f"modules: not read ({why})"]
        lines = [shown(line) for line in lines]  # names and paths come from files
        self.diff_text = "\n".join(lines)
        self.diff_dialog = CompareDialog(self, lines[0], modules, self.diff_text)
        self.diff_dialog.open()


class CompareDialog(QDialog):
    """Two versions compared: the summary, the changed modules with their relative change
    (||b - a|| / ||a|| over the module's changed tensors), and every changed tensor."""

    HEADERS = ("Module", "Status", "Tensors", "Parameters", "Relative change")

    def __init__(
        self, parent: QWidget, summary: str, modules: StructureDiff | None, details: str
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare versions")
        self.resize(760, 480)
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(summary))
        self.modules = QTableWidget(0, len(self.HEADERS))
        _read_only_rows(self.modules, list(self.HEADERS))
        rows = modules.modules if modules is not None else ()
        self.modules.setRowCount(len(rows))
        for row, m in enumerate(rows):
            tip = "\n".join(
                shown(f"{t.name}: {relative_text(t.relative, t.why)}") for t in m.tensors
            )
            cells = [m.module or "(top level)", m.status, str(len(m.tensors)),
                     human_count(m.parameters), relative_text(m.relative)]  # fmt: skip
            for col, text in enumerate(cells):
                item = QTableWidgetItem(shown(text))
                item.setToolTip(tip)
                self.modules.setItem(row, col, item)
        title = "Changed modules (relative change ||b - a|| / ||a||)"
        if modules is not None:
            title += f", {human_bytes(modules.bytes_read)} read"
        layout.addWidget(plain_label(title))
        layout.addWidget(self.modules, 2)
        self.text = QPlainTextEdit(details)
        self.text.setReadOnly(True)
        layout.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def rows(self) -> list[list[str]]:
        """The module table's cells (what a person reads; tests compare it)."""
        t = self.modules
        return [[(t.item(r, c) or QTableWidgetItem()).text() for c in range(t.columnCount())]
                for r in range(t.rowCount())]  # fmt: skip


def _version(seq: object) -> str:
    """A journal entry's version number as the tables show one ("—": none, e.g. removed)."""
    return f"@{seq}" if isinstance(seq, int) else "—"


class LabelMoves(QTableWidget):
    """Every move of the shown model's labels, newest first: when, which, from, to, why, who."""

    HEADERS = ("Time", "Label", "From", "To", "Why", "By")

    def __init__(self) -> None:
        super().__init__(0, len(self.HEADERS))
        self.shown_model: str | None = None  # whose label journal the rows are
        _read_only_rows(self, list(self.HEADERS))

    def show_moves(self, model: str | None, moves: Sequence[Mapping[str, Any]]) -> None:
        """List the journal entries ``moves`` (oldest first, as read) of ``model``."""
        self.shown_model = model
        self.setRowCount(len(moves))
        for row, e in enumerate(reversed(moves)):
            cells = [str(e.get("time", ""))[:19].replace("T", " "), str(e.get("label", "")),
                     _version(e.get("old")), _version(e.get("new")), str(e.get("why", "")),
                     f"{e.get('user', '?')}@{e.get('host', '?')}"]  # fmt: skip
            for col, text in enumerate(cells):
                self.setItem(row, col, QTableWidgetItem(shown(text)))

    def rows(self) -> list[list[str]]:
        """The cells shown, row by row (what a person reads; tests compare it)."""
        cells = (
            (self.item(r, c) for c in range(self.columnCount())) for r in range(self.rowCount())
        )
        return [[item.text() if item is not None else "" for item in row] for row in cells]


def _lineage_box(versions: HistoryTab) -> QWidget:
    """The lineage graph under its title, scrolled sideways when wider than the tab."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 6, 0, 0)
    title = QLabel("Lineage: parent links, and models sharing tensors with the shown version "
                   "(click a box to open it)")  # fmt: skip
    title.setStyleSheet("font-weight: bold;")
    layout.addWidget(title)
    scroll = QScrollArea()
    scroll.setWidget(versions.graph)
    scroll.setWidgetResizable(True)
    scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setMinimumHeight(versions.graph.minimumHeight() + 4)
    layout.addWidget(scroll)
    return box


def history_page(versions: HistoryTab, moves: LabelMoves) -> QWidget:
    """The History tab: the versions above, their lineage graph, the label moves below
    (splitters between)."""
    lower = QWidget()
    layout = QVBoxLayout(lower)
    layout.setContentsMargins(0, 6, 0, 0)
    title = QLabel("Label moves (newest first)")
    title.setStyleSheet("font-weight: bold;")
    layout.addWidget(title)
    layout.addWidget(moves)
    split = QSplitter(Qt.Orientation.Vertical)
    split.addWidget(versions)
    split.addWidget(_lineage_box(versions))
    split.addWidget(lower)
    split.setStretchFactor(0, 3)
    split.setStretchFactor(1, 0)
    split.setStretchFactor(2, 2)
    return split
