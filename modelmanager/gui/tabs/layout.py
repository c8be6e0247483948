"""The Shard layout tab: a grid of chunks (columns) by devices (rows), coloured by health.

Clicking a cell selects its chunk and shows it below the grid: its tensors, size, stored size,
codec, and each piece with its device and the device's state (read as a job). "Go to next
degraded" scrolls to and selects the next chunk below its policy; "Repair" runs Maintenance >
Repair (repair works on the whole repository), and the layout is read again afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.context import WindowContext
from modelmanager.services.chunk_info import ChunkDetails, chunk_details
from modelmanager.services.redundancy import ChunkPlacement, VersionLayout

COLOURS = {"ok": QColor("#3a9a4a"), "degraded": QColor("#e0a020"), "missing": QColor("#c8372d")}
EMPTY = QColor("#d8d8d8")
CELL, GAP, NAME_WIDTH, ROW = 8, 1, 90, 18


class LayoutGrid(QWidget):
    """Draws one row per device; a filled cell where the device holds a piece of the chunk."""

    #: The chunk column clicked.
    chunk_clicked = Signal(object)  # a chunk index as a Python int (64-bit safe)

    def __init__(self) -> None:
        super().__init__()
        self.layout_data: VersionLayout | None = None
        self.selected: int | None = None  # the selected chunk's column
        self.setMouseTracking(True)

    def set_layout(self, data: VersionLayout | None) -> None:
        self.layout_data = data
        self.updateGeometry()
        self.adjustSize()
        self.update()

    def sizeHint(self) -> QSize:
        if self.layout_data is None:
            return QSize(200, 100)
        n = len(self.layout_data.chunks)
        return QSize(NAME_WIDTH + n * (CELL + GAP) + 10, (len(self.layout_data.devices) + 1) * ROW)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        """(device row, chunk column) under a point, if any."""
        if self.layout_data is None or pos.x() < NAME_WIDTH:
            return None
        col, row = (pos.x() - NAME_WIDTH) // (CELL + GAP), pos.y() // ROW
        if 0 <= row < len(self.layout_data.devices) and 0 <= col < len(self.layout_data.chunks):
            return row, col
        return None

    def cell_rect(self, row: int, col: int) -> QRect:
        """Where the cell of device ``row`` and chunk ``col`` is drawn."""
        return QRect(NAME_WIDTH + col * (CELL + GAP), row * ROW + 4, CELL, ROW - 8)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None:
            self.chunk_clicked.emit(cell[1])
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        data = self.layout_data
        if data is None:
            return
        painter = QPainter(self)
        for row, device in enumerate(data.devices):
            y = row * ROW
            painter.setPen(self.palette().text().color())
            painter.drawText(QRect(0, y, NAME_WIDTH - 6, ROW), Qt.AlignmentFlag.AlignRight
                             | Qt.AlignmentFlag.AlignVCenter, device)  # fmt: skip
            for col, chunk in enumerate(data.chunks):
                colour = COLOURS[chunk.health] if device in chunk.pieces else EMPTY
                painter.fillRect(self.cell_rect(row, col), colour)
        if self.selected is not None and self.selected < len(data.chunks):
            painter.setPen(QPen(self.palette().highlight().color(), 2))
            x = NAME_WIDTH + self.selected * (CELL + GAP)
            painter.drawRect(x - 2, 1, CELL + 3, len(data.devices) * ROW - 2)
        painter.end()

    def event(self, e: object) -> bool:
        if isinstance(e, QHelpEvent) and self.layout_data is not None:
            cell = self.cell_at(e.pos())
            if cell is None:
                QToolTip.hideText()
            else:
                row, col = cell
                chunk = self.layout_data.chunks[col]
                device = self.layout_data.devices[row]
                piece = chunk.pieces.get(device, "no piece here")
                QToolTip.showText(e.globalPos(), f"chunk {chunk.chunk_id[:12]} "
                                  f"({human_bytes(chunk.length)}), {chunk.health}\n"
                                  f"{device}: {piece}\nClick: tensors, codec")  # fmt: skip
            return True
        return super().event(e)  # type: ignore[arg-type]


PROMPT = "Select a version to see where its chunks live."
CLICK = "Click a cell to see its chunk: tensors, size, codec and where each piece lives."


def placement_text(index: int, count: int, chunk: ChunkPlacement) -> str:
    """What the layout itself says about a chunk (shown at once; the details follow)."""
    pieces = "\n".join(f"  {shown(device)}: {piece}"
                       for device, piece in sorted(chunk.pieces.items()))  # fmt: skip
    return (f"Chunk {index + 1} of {count}: {chunk.chunk_id[:16]}…, "
            f"{human_bytes(chunk.length)}, {chunk.health}\n"
            f"Pieces:\n{pieces or '  none on a readable device'}")  # fmt: skip


def details_text(index: int, count: int, health: str, d: ChunkDetails) -> str:
    """The chunk's tensors, sizes, codec and pieces (device, piece, device state); names come
    from files and settings, so each is shown with its control characters visible."""
    tensors = "\n".join(f"  {shown(t)}" for t in d.tensors[:40]) or "  none (file header bytes)"
    more = f"\n  … and {len(d.tensors) - 40} more" if len(d.tensors) > 40 else ""
    pieces = "\n".join(f"  {shown(p.device)}: {p.piece} (device {p.state})" for p in d.pieces)
    return (
        f"Chunk {index + 1} of {count}: {d.chunk_id[:16]}…, {human_bytes(d.length)}, stored "
        f"{human_bytes(d.stored)} (all pieces), codec {shown(d.codec)}, {health}\n"
        f"{plural(len(d.tensors), 'tensor')}:\n{tensors}{more}\n"
        f"{plural(len(d.pieces), 'piece')}:\n{pieces or '  none on a readable device'}"
    )


class LayoutTab(QWidget):
    """Legend, summary, actions, the scrollable grid and the selected chunk's details."""

    def __init__(self) -> None:
        super().__init__()
        self.summary = QLabel(PROMPT)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        legend = QLabel(
            '<span style="color:#3a9a4a">■</span> ok &nbsp; '
            '<span style="color:#e0a020">■</span> degraded (below its policy) &nbsp; '
            '<span style="color:#c8372d">■</span> missing &nbsp; '
            '<span style="color:#a0a0a0">■</span> no piece on this device'
        )  # our own fixed text: the only rich text in the window
        self.grid = LayoutGrid()
        self.grid.chunk_clicked.connect(self.select_chunk)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidget(self.grid)
        self.scroll_area.setWidgetResizable(False)
        self.next_button = QPushButton("Go to next degraded")
        self.next_button.setToolTip("Scroll to and select the next chunk below its policy")
        self.next_button.clicked.connect(self.next_degraded)
        self.repair_button = QPushButton("Repair this model (whole repository)")
        self.repair_button.setToolTip("Maintenance > Repair: rebuilds missing or corrupt "
                                      "pieces of every model, this one included")  # fmt: skip
        self.repair_button.clicked.connect(self._repair)
        actions = QHBoxLayout()
        actions.addWidget(self.next_button)
        actions.addWidget(self.repair_button)
        actions.addStretch(1)
        self.details = QPlainTextEdit(CLICK)
        self.details.setReadOnly(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(legend)
        layout.addLayout(actions)
        layout.addWidget(self.scroll_area)
        layout.addWidget(self.details, 1)
        self.context: WindowContext | None = None
        self.repair: Callable[[], object] | None = None
        self.shown_details: ChunkDetails | None = None
        self._buttons()

    def connect_actions(self, context: WindowContext, repair: Callable[[], object]) -> None:
        """Where chunk details are read (the window's runner) and what Repair runs."""
        self.context = context
        self.repair = repair

    def _buttons(self) -> None:
        chunks = self.grid.layout_data.chunks if self.grid.layout_data else ()
        bad = any(c.health != "ok" for c in chunks)
        self.next_button.setEnabled(bad)
        self.repair_button.setEnabled(bad and self.repair is not None)

    def clear(self) -> None:
        """Nothing selected (the version shown was removed)."""
        self.summary.setText(PROMPT)
        self.grid.selected = None
        self.grid.set_layout(None)
        self.details.setPlainText(CLICK)
        self._buttons()

    def set_layout(self, data: VersionLayout) -> None:
        counts = {h: sum(1 for c in data.chunks if c.health == h) for h in COLOURS}
        self.summary.setText(
            f"{data.ref}: {plural(len(data.chunks), 'chunk')} on "
            f"{plural(len(data.devices), 'device')}, policy {data.policy}: {counts['ok']} ok, "
            f"{counts['degraded']} degraded, {counts['missing']} missing"
        )
        old, selected = self.grid.layout_data, self.grid.selected
        keep = None
        if old is not None and selected is not None and old.ref == data.ref:
            ids = [c.chunk_id for c in data.chunks]
            chosen = old.chunks[selected].chunk_id if selected < len(old.chunks) else None
            keep = ids.index(chosen) if chosen in ids else None
        self.grid.selected = None
        self.grid.set_layout(data)
        self._fit()
        self._buttons()
        if keep is not None:
            self.select_chunk(keep)  # read again: its pieces may have changed
        else:
            self.details.setPlainText(CLICK)

    def _fit(self) -> None:
        """The grid's area as tall as its rows (and the scroll bar): the details get the rest."""
        bar = self.scroll_area.horizontalScrollBar().sizeHint().height()
        frame = 2 * self.scroll_area.frameWidth()
        self.scroll_area.setMaximumHeight(max(self.grid.sizeHint().height() + bar + frame, 60))

    def select_chunk(self, col: int) -> None:
        """Select the chunk in column ``col``, scroll to it and read its details."""
        data = self.grid.layout_data
        if data is None or not 0 <= col < len(data.chunks):
            return
        self.grid.selected = col
        self.grid.update()
        x = NAME_WIDTH + col * (CELL + GAP)
        self.scroll_area.ensureVisible(x, ROW, CELL * 4, ROW)
        chunk = data.chunks[col]
        self.shown_details = None
        self.details.setPlainText(placement_text(col, len(data.chunks), chunk))
        if self.context is None:
            return
        ws, ref, count = self.context.ws, data.ref, len(data.chunks)

        def show(d: ChunkDetails) -> None:
            if self.grid.selected == col and self.grid.layout_data is data:
                self.shown_details = d
                self.details.setPlainText(details_text(col, count, chunk.health, d))

        self.context.runner.submit(f"Read chunk {chunk.chunk_id[:12]}",
                                   lambda _ctx: chunk_details(ws, ref, chunk.chunk_id),
                                   show)  # fmt: skip

    def next_degraded(self) -> int | None:
        """Select the next chunk below its policy after the selected one (wrapping around)."""
        data = self.grid.layout_data
        if data is None:
            return None
        n, start = len(data.chunks), (self.grid.selected if self.grid.selected is not None
                                      else -1)  # fmt: skip
        for step in range(1, n + 1):
            col = (start + step) % n
            if data.chunks[col].health != "ok":
                self.select_chunk(col)
                return col
        return None

    def _repair(self) -> None:
        if self.repair is not None:
            self.repair()
