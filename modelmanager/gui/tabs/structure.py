"""The Structure tab: the shown version's module tree (runs of identical blocks folded), with
parameters, bytes, dtypes and share per module, and the embedding/attention/MLP/norm shares;
for an ONNX file its graph's inputs, outputs and operator counts (a Keras file's layers are
module nodes of the tree)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHeaderView,
    QSplitter,
    QTreeView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.analysis.structure import Graph, Node, Structure, mix_text, percent
from modelmanager.core.units import human_bytes, human_count
from modelmanager.gui.models import dtype_mix
from modelmanager.gui.tabs.overview import plain_label

Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("Name", "Parameters", "Bytes", "Dtypes", "Share")
#: Levels opened when a version is shown (model > layers > the folded run).
OPEN_LEVELS = 2


class StructureModel(QAbstractItemModel):
    """A read-only tree over a Structure's nodes; an index's id is its node's place in a list."""

    def __init__(self) -> None:
        super().__init__()
        self._nodes: list[Node] = []
        self._parent: list[int] = []  # node id -> parent id (-1: top level)
        self._row: list[int] = []  # node id -> row under its parent
        self._kids: dict[int, list[int]] = {}  # node id (-1: the invisible root) -> child ids
        self._total = 0

    def set_structure(self, s: Structure | None) -> None:
        """Show ``s`` (None: nothing)."""
        self.beginResetModel()
        self._nodes, self._parent, self._row, self._kids = [], [], [], {-1: []}
        self._total = s.parameters if s else 0
        if s is not None:
            self._add(s.root.children, -1)
        self.endResetModel()

    def _add(self, children: tuple[Node, ...], parent: int) -> None:
        for row, node in enumerate(children):
            nid = len(self._nodes)
            self._nodes.append(node)
            self._parent.append(parent)
            self._row.append(row)
            self._kids[parent].append(nid)
            self._kids[nid] = []
            self._add(node.children, nid)

    def node(self, index: Index) -> Node | None:
        """The node at ``index`` (None for the invisible root)."""
        return self._nodes[index.internalId()] if index.isValid() else None

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        kids = self._kids.get(parent.internalId() if parent.isValid() else -1, [])
        if not (0 <= row < len(kids) and 0 <= column < len(COLUMNS)):
            return QModelIndex()
        return self.createIndex(row, column, kids[row])

    def parent(self, child: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not child.isValid():
            return QModelIndex()
        pid = self._parent[child.internalId()]
        return QModelIndex() if pid < 0 else self.createIndex(self._row[pid], 0, pid)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._kids.get(parent.internalId() if parent.isValid() else -1, []))

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # fmt: skip
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self.node(index)
        if node is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(node, col)
        if role == Qt.ItemDataRole.UserRole:  # the raw figure
            return (node.label, node.parameters, node.bytes, node.dtypes, node.parameters)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(node)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, node: Node, col: int) -> str:
        if col == 0:
            if node.run is not None:
                return f"{node.label}  ({human_count(node.run.each_parameters)} each)"
            if node.shape is not None:
                return f"{node.name}  [{' x '.join(map(str, node.shape)) or 'scalar'}]"
            return node.name
        if col == 1:
            return human_count(node.parameters)
        if col == 2:
            return human_bytes(node.bytes)
        if col == 3:
            return dtype_mix(node.dtypes)
        return percent(node.parameters, self._total)

    @staticmethod
    def _tip(node: Node) -> str:
        """Its figures, and its whole dtype mix (the column names the two largest shares: a
        GGUF block's third quantization type is read here)."""
        mix = f"\nDtypes by bytes: {mix_text(node.dtypes)}" if len(node.dtypes) > 1 else ""
        if node.run is None:
            return f"{node.parameters:,} parameters in {node.tensors} tensors{mix}"
        r = node.run
        return (f"{r.count} identical blocks ({r.first} to {r.last}), {r.each_parameters:,} "
                f"parameters and {human_bytes(r.each_bytes)} each; the rows below describe "
                f"one block{mix}")  # fmt: skip


GRAPH_COLUMNS = ("Graph", "Dtype", "Shape or count")


def _graph_items(g: Graph) -> QTreeWidgetItem:
    """One ONNX file's graph as a tree item: inputs, outputs and operators under it (item
    text is plain text: names from a file are never rendered)."""
    top = QTreeWidgetItem([g.file, "", f"{g.nodes:,} nodes"])
    for title, ports, total in (("Inputs", g.inputs, g.inputs_total),
                                ("Outputs", g.outputs, g.outputs_total)):  # fmt: skip
        group = QTreeWidgetItem(top, [title, "", str(total)])
        for p in ports:
            dims = "?" if p.shape is None else " x ".join(map(str, p.shape)) or "scalar"
            QTreeWidgetItem(group, [p.name, p.dtype, dims])
        if total > len(ports):
            QTreeWidgetItem(group, [f"... {total - len(ports)} more", "", ""])
    ops = QTreeWidgetItem(top, ["Operators", "", f"{len(g.operators)} kinds"])
    for op, n in g.operators:
        QTreeWidgetItem(ops, [op, "", f"{n:,}"])
    left = g.nodes - sum(n for _op, n in g.operators)
    if left > 0:
        QTreeWidgetItem(ops, ["... others", "", f"{left:,}"])
    return top


class StructureTab(QWidget):
    """The parameter shares and format facts on top, an ONNX file's graph (inputs, outputs,
    operators) when the version has one, the module tree below."""

    def __init__(self) -> None:
        super().__init__()
        self.summary = plain_label("")
        self.summary.setWordWrap(True)
        self.graph = QTreeWidget()
        self.graph.setColumnCount(len(GRAPH_COLUMNS))
        self.graph.setHeaderLabels(list(GRAPH_COLUMNS))
        self.graph.setUniformRowHeights(True)
        gheader = self.graph.header()
        gheader.setStretchLastSection(False)
        gheader.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        gheader.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.graph.hide()
        self.model = StructureModel()
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setUniformRowHeights(True)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.graph)
        self.split.addWidget(self.view)
        v = QVBoxLayout(self)
        v.addWidget(self.summary)
        v.addWidget(self.split)
        self.structure: Structure | None = None

    def show_structure(self, s: Structure | None) -> None:
        """Show ``s`` (computed off the UI thread), the first levels open."""
        self.structure = s
        self.model.set_structure(s)
        self.graph.clear()
        self.graph.setVisible(bool(s and s.graphs))
        if s is None:
            self.summary.setText("")
            return
        self.graph.addTopLevelItems([_graph_items(g) for g in s.graphs])
        self.graph.expandToDepth(1)  # each file's inputs, outputs and operators open
        self._fit_graph()
        total = s.parameters
        lines = [f"{s.ref}: {human_count(total)} parameters, {human_bytes(s.root.bytes)}",
                 "Shares: " + " · ".join(f"{k.capitalize() if k != 'mlp' else 'MLP'} "
                              f"{percent(v, total)}" for k, v in s.shares.items())]  # fmt: skip
        lines += [f"{path}: " + ", ".join(f"{k} {v}" for k, v in facts.items())
                  for path, facts in s.facts]  # fmt: skip
        self.summary.setText("\n".join(lines))
        self.view.expandToDepth(OPEN_LEVELS - 1)

    def showEvent(self, event: QShowEvent) -> None:
        """Fit the graph view once the tab has its size (a version may be chosen while
        another tab is in front)."""
        super().showEvent(event)
        self._fit_graph()

    def _fit_graph(self) -> None:
        """Give the graph view the height its open rows need, at most half the room."""
        total = sum(self.split.sizes())
        if not self.graph.isVisibleTo(self) or total <= 0:
            return
        rows, item = 0, self.graph.topLevelItem(0)
        while item is not None:
            rows += 1
            item = self.graph.itemBelow(item)
        row = self.graph.sizeHintForRow(0) or self.fontMetrics().height() + 4
        need = rows * row + self.graph.header().height() + 2 * self.graph.frameWidth() + 2
        graph = min(need, total // 2)
        self.split.setSizes([graph, total - graph])

    def clear(self) -> None:
        """Show no version."""
        self.show_structure(None)
