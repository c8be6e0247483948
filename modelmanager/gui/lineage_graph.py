"""The History tab's lineage graph: the shown model's versions with their parent links, and
the other models whose versions share tensors with the shown version, with the share.

:func:`read_graph` runs in a read job (``services.lineage.related`` reads manifests, up to
500); :func:`build_graph` turns its result into nodes and edges without Qt; :class:`LineageView`
paints them (plain QPainter: a handful of boxes and arrows need no scene) and says which node
was clicked, as a ``model@N`` reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPolygonF,
    QShowEvent,
)
from PySide6.QtWidgets import QToolTip, QTreeView, QWidget

from modelmanager.core.analysis.lineage import (
    DERIVED,
    FINE_TUNED,
    SAME,
    Lineage,
    Relation,
    percent,
)
from modelmanager.core.catalog import VersionRow
from modelmanager.core.text import shown
from modelmanager.errors import ModelManagerError
from modelmanager.gui.library import find_row
from modelmanager.gui.models import REPO_ROLE
from modelmanager.services import Workspace, lineage

#: Versions of the shown model drawn at most (those nearest the shown one), and other models.
MAX_VERSIONS, MAX_MODELS = 16, 6
#: Node size, gaps and margins, in pixels.
NODE_W, NODE_H, GAP, ROW_GAP, MARGIN = 150, 42, 34, 64, 14


@dataclass(frozen=True)
class Node:
    """A box of the graph: a version of the shown model (top row) or a related model."""

    ref: str  # what a click selects (model@N)
    title: str  # "@3", or the related model's name
    detail: str  # labels and share ("prod · 100 %"), or "@2 · likely its base"
    own: bool  # a version of the shown model
    current: bool = False  # the version the tabs show
    tip: str = ""  # lines, each escaped (names and messages come from files)


@dataclass(frozen=True)
class Edge:
    """An arrow from ``source`` to ``target`` (indexes of nodes): a recorded parent link, or
    shared content from the older version to the newer (``text`` is the share)."""

    source: int
    target: int
    kind: str  # "parent" | "shares"
    text: str = ""


@dataclass(frozen=True)
class Graph:
    """What the lineage view draws, and a line saying what was left out (if anything)."""

    model: str
    ref: str | None  # the version whose relatives were looked up
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    note: str = ""

    def index(self, ref: str) -> int | None:
        """The node that selects ``ref`` (None: not drawn)."""
        return next((i for i, n in enumerate(self.nodes) if n.ref == ref), None)


def _nearest(versions: Sequence[VersionRow], seq: int | None) -> list[VersionRow]:
    """At most MAX_VERSIONS versions, those nearest ``seq`` (the newest without one), oldest
    first."""
    centre = seq if seq is not None else max((v.seq for v in versions), default=0)
    kept = sorted(versions, key=lambda v: (abs(v.seq - centre), -v.seq))[:MAX_VERSIONS]
    return sorted(kept, key=lambda v: v.seq)


def _best_per_model(lin: Lineage, model: str) -> list[tuple[Relation, list[Relation]]]:
    """Other models' relations grouped by model: the largest share (newest on a tie) and all
    of them, models in the order of their best share."""
    groups: dict[str, list[Relation]] = {}
    for r in lin.related:
        name = r.ref.rpartition("@")[0]
        if name != model:
            groups.setdefault(name, []).append(r)

    def seq(r: Relation) -> int:
        return int(r.ref.rpartition("@")[2] or 0)

    best = [(max(rs, key=lambda r: (r.share, seq(r))), rs) for rs in groups.values()]
    return sorted(best, key=lambda b: (-b[0].share, b[0].ref))


def _lines(parts: Sequence[str]) -> str:
    """A tooltip of the non-empty ``parts``, one a line, each escaped: a message or a name
    read from a file never splits or reorders a line."""
    return "\n".join(shown(part) for part in parts if part)


def kind(r: Relation) -> str:
    """What the other version is to the shown one, in two words (the wording's thresholds)."""
    if r.share >= SAME:
        return "same weights"
    if r.share >= FINE_TUNED:
        return "likely its base" if r.older else "likely a fine-tune"
    return "shares most" if r.share >= DERIVED else "shares some"


def build_graph(
    model: str, versions: Sequence[VersionRow], lin: Lineage | None, note: str = ""
) -> Graph:
    """Nodes and edges for ``model``'s ``versions`` and, with ``lin`` (the shown version's
    relatives), the shares: its own versions' in their boxes, other models as boxes below."""
    seq = int(lin.ref.rpartition("@")[2]) if lin is not None else None
    shares = {r.ref: r for r in lin.related} if lin is not None else {}
    kept = _nearest(versions, seq)
    nodes: list[Node] = []
    for v in kept:
        ref = f"{model}@{v.seq}"
        r = shares.get(ref)
        detail = " · ".join([*v.labels[:2], *([percent(r.share)] if r else [])])
        tip = _lines([ref, v.created[:19].replace("T", " "), v.message, r.wording if r else ""])
        nodes.append(Node(ref, f"@{v.seq}", detail, True, v.seq == seq, tip))
    at = {v.seq: i for i, v in enumerate(kept)}
    edges = [Edge(at[v.parent], at[v.seq], "parent") for v in kept if v.parent in at]
    notes = [note] if note else []
    if len(versions) > len(kept):
        notes.append(f"{len(kept)} of {len(versions)} versions drawn (those nearest)")
    if lin is not None and seq in at:
        groups = _best_per_model(lin, model)
        for best, rs in groups[:MAX_MODELS]:
            name, _, other = best.ref.rpartition("@")
            nodes.append(Node(best.ref, name, f"@{other} · {kind(best)}", False,
                              tip=_lines([r.wording for r in rs])))  # fmt: skip
            pair = (len(nodes) - 1, at[seq]) if best.older else (at[seq], len(nodes) - 1)
            edges.append(Edge(*pair, "shares", percent(best.share)))
        if len(groups) > MAX_MODELS:
            notes.append(f"{len(groups) - MAX_MODELS} more related models not drawn")
        if lin.note:
            notes.append(lin.note)
        if not lin.related:
            notes.append(f"{lin.ref} shares no tensor with any other version")
    return Graph(model, lin.ref if lin else None, tuple(nodes), tuple(edges), "; ".join(notes))


def read_graph(ws: Workspace, model: str, versions: Sequence[VersionRow], ref: str | None) -> Graph:
    """The graph of ``model`` with ``ref``'s relatives (a read job: up to 500 manifests are
    read, no chunk data); a relatives lookup that fails leaves the versions, saying why."""
    if ref is None or ref.partition("@")[0] != model:
        return build_graph(model, versions, None, "select a version to see what it shares")
    try:
        lin = lineage.related(ws, ref)
    except ModelManagerError as e:  # removed meanwhile, unreadable: one clear line
        return build_graph(model, versions, None, f"relatives not read: {e.message}")
    return build_graph(model, versions, lin)


class LineageView(QWidget):
    """Paints a :class:`Graph`; a click on a box emits ``activated`` with its reference."""

    activated = Signal(str)
    #: The view became visible (its tab was opened): a graph left unread can be read now.
    became_visible = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.graph: Graph | None = None
        self.text = ""  # shown instead of a graph ("reading…", nothing selected)
        self.rects: list[QRect] = []
        self.setMouseTracking(True)
        self.setMinimumHeight(MARGIN * 2 + NODE_H * 2 + ROW_GAP + 24)

    def show_text(self, text: str) -> None:
        """Show ``text`` and no graph (while the graph is read, or when there is none)."""
        self.graph, self.text, self.rects = None, text, []
        self.setMinimumWidth(0)
        self.updateGeometry()
        self.update()

    def set_graph(self, graph: Graph) -> None:
        """Draw ``graph``: own versions in a row, oldest left; related models below."""
        self.graph, self.text = graph, ""
        own = [i for i, n in enumerate(graph.nodes) if n.own]
        current = next((k for k, i in enumerate(own) if graph.nodes[i].current), 0)
        others = len(graph.nodes) - len(own)
        # the related models centred below the shown version, never left of the margin
        first = max(0, current - (others - 1) / 2)
        self.rects = []
        for n in graph.nodes:
            k = len(self.rects) if n.own else first + len(self.rects) - len(own)
            y = MARGIN + (0 if n.own else NODE_H + ROW_GAP)
            self.rects.append(QRect(int(MARGIN + k * (NODE_W + GAP)), y, NODE_W, NODE_H))
        self.setMinimumWidth(self.sizeHint().width())  # wider than the tab: it scrolls
        self.updateGeometry()
        self.update()

    def node_rect(self, ref: str) -> QRect | None:
        """Where the box of ``ref`` is drawn (None: it is not)."""
        i = self.graph.index(ref) if self.graph is not None else None
        return self.rects[i] if i is not None else None

    def node_at(self, x: int, y: int) -> Node | None:
        """The node under the point (x, y), if any."""
        if self.graph is None:
            return None
        hit = next((i for i, r in enumerate(self.rects) if r.contains(x, y)), None)
        return self.graph.nodes[hit] if hit is not None else None

    def sizeHint(self) -> QSize:
        """Wide enough for every box (the tab scrolls it), two rows and the note high."""
        right = max((r.right() for r in self.rects), default=0)
        return QSize(max(right + MARGIN, 320), self.minimumHeight())

    def showEvent(self, event: QShowEvent) -> None:
        """Say so when the tab showing the view is opened."""
        super().showEvent(event)
        self.became_visible.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A click on a box selects its version (the History tab passes it on)."""
        node = self.node_at(int(event.position().x()), int(event.position().y()))
        if node is not None and event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit(node.ref)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """A hand over a box: it can be clicked."""
        over = self.node_at(int(event.position().x()), int(event.position().y()))
        shape = Qt.CursorShape.PointingHandCursor if over else Qt.CursorShape.ArrowCursor
        self.setCursor(shape)
        super().mouseMoveEvent(event)

    def event(self, event: QEvent) -> bool:
        """A box's tooltip: the version's date and message, or the shares in words."""
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            node = self.node_at(event.pos().x(), event.pos().y())
            if node is not None and node.tip:
                QToolTip.showText(event.globalPos(), node.tip, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    # -- painting -----------------------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        """The edges first, then the boxes over them, then the note."""
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        if self.graph is None:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                       self.text)  # fmt: skip
            p.end()
            return
        for e in self.graph.edges:
            self._edge(p, pal, e)
        for n, r in zip(self.graph.nodes, self.rects, strict=True):
            self._node(p, pal, n, r)
        if self.graph.note:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(MARGIN, self.height() - 8, shown(self.graph.note))
        p.end()

    def _node(self, p: QPainter, pal: QPalette, n: Node, r: QRect) -> None:
        fill = pal.color(QPalette.ColorRole.Highlight) if n.current else pal.color(
            QPalette.ColorRole.Base if n.own else QPalette.ColorRole.AlternateBase)  # fmt: skip
        ink = pal.color(
            QPalette.ColorRole.HighlightedText if n.current else QPalette.ColorRole.Text
        )
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.setBrush(fill)
        p.drawRoundedRect(QRectF(r), 6, 6)
        inner = r.adjusted(6, 3, -6, -3)
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(ink)
        metrics = p.fontMetrics()
        title = metrics.elidedText(shown(n.title), Qt.TextElideMode.ElideMiddle, inner.width())
        p.drawText(inner, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, title)
        p.setFont(self.font())
        detail = p.fontMetrics().elidedText(
            shown(n.detail), Qt.TextElideMode.ElideRight, inner.width()
        )
        p.drawText(inner, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, detail)

    def _edge(self, p: QPainter, pal: QPalette, e: Edge) -> None:
        a, b = self.rects[e.source], self.rects[e.target]
        colour = QColor(pal.color(QPalette.ColorRole.Text))
        colour.setAlpha(150)
        pen = QPen(colour, 1.5)
        path = QPainterPath()
        if e.kind == "shares":  # between the rows: from the lower box's top, or to it
            pen.setStyle(Qt.PenStyle.DashLine)
            up = a.top() > b.bottom()
            start = QPointF(a.center().x(), a.top() if up else a.bottom())
            end = QPointF(b.center().x(), b.bottom() + 1 if up else b.top() - 1)
            path.moveTo(start)
            path.lineTo(end)
        elif abs(a.left() - b.left()) <= NODE_W + GAP:  # neighbours: a straight arrow
            start = QPointF(a.right(), a.center().y())
            end = QPointF(b.left() - 1, b.center().y())
            path.moveTo(start)
            path.lineTo(end)
        else:  # a parent further left: an arc over the boxes between
            start = QPointF(a.center().x(), a.top())
            end = QPointF(b.center().x(), b.top() - 1)
            lift = min(MARGIN - 2, 12)
            path.moveTo(start)
            path.cubicTo(start.x(), start.y() - lift, end.x(), end.y() - lift, end.x(), end.y())
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
        self._arrowhead(p, colour, path)
        if e.text:
            mid = path.pointAtPercent(0.5)
            p.setPen(pal.color(QPalette.ColorRole.Text))
            p.drawText(QPointF(mid.x() + 6, mid.y() + 4), e.text)

    @staticmethod
    def _arrowhead(p: QPainter, colour: QColor, path: QPainterPath) -> None:
        tip = path.pointAtPercent(1.0)
        back = path.pointAtPercent(max(0.0, 1.0 - 8.0 / max(path.length(), 8.0)))
        dx, dy = tip.x() - back.x(), tip.y() - back.y()
        norm = max((dx * dx + dy * dy) ** 0.5, 1e-6)
        ux, uy = dx / norm, dy / norm
        left = QPointF(tip.x() - 8 * ux + 4 * uy, tip.y() - 8 * uy - 4 * ux)
        right = QPointF(tip.x() - 8 * ux - 4 * uy, tip.y() - 8 * uy + 4 * ux)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawPolygon(QPolygonF([tip, left, right]))


def select_in_tree(view: QTreeView, ref: str) -> bool:
    """Make ``ref`` (a model or ``model@N`` of the current row's repository) the current row
    of the window's tree, scrolled to and its model expanded (False: not listed)."""
    repo = view.currentIndex().siblingAtColumn(0).data(REPO_ROLE)
    index = find_row(view, ("repo", repo, ref))
    if not index.isValid():
        return False
    view.setCurrentIndex(index)
    view.scrollTo(index)
    return True
