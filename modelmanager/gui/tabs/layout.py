"""The Shard layout tab: a grid of chunks (columns) by devices (rows), coloured by health."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QHelpEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QScrollArea, QToolTip, QVBoxLayout, QWidget

from modelmanager.core.units import human_bytes
from modelmanager.services.redundancy import VersionLayout

COLOURS = {"ok": QColor("#3a9a4a"), "degraded": QColor("#e0a020"), "missing": QColor("#c8372d")}
EMPTY = QColor("#d8d8d8")
CELL, GAP, NAME_WIDTH, ROW = 8, 1, 90, 18


class LayoutGrid(QWidget):
    """Draws one row per device; a filled cell where the device holds a piece of the chunk."""

    def __init__(self) -> None:
        super().__init__()
        self.layout_data: VersionLayout | None = None
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
                x = NAME_WIDTH + col * (CELL + GAP)
                colour = COLOURS[chunk.health] if device in chunk.pieces else EMPTY
                painter.fillRect(x, y + 4, CELL, ROW - 8, colour)
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
                                  f"{device}: {piece}")  # fmt: skip
            return True
        return super().event(e)  # type: ignore[arg-type]


PROMPT = "Select a version to see where its chunks live."


class LayoutTab(QWidget):
    """Legend, summary and the scrollable grid."""

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
        scroll = QScrollArea()
        scroll.setWidget(self.grid)
        scroll.setWidgetResizable(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(legend)
        layout.addWidget(scroll)

    def clear(self) -> None:
        """Nothing selected (the version shown was removed)."""
        self.summary.setText(PROMPT)
        self.grid.set_layout(None)

    def set_layout(self, data: VersionLayout) -> None:
        counts = {h: sum(1 for c in data.chunks if c.health == h) for h in COLOURS}
        self.summary.setText(
            f"{data.ref}: {len(data.chunks)} chunks on {len(data.devices)} devices, policy "
            f"{data.policy}: {counts['ok']} ok, {counts['degraded']} degraded, "
            f"{counts['missing']} missing"
        )
        self.grid.set_layout(data)
