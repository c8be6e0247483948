"""The results dialog every maintenance job (and an export) ends in: summary, sections, actions.

Not modal: the window stays usable, and the dialog stays open until closed. Extra buttons
("Repair now", "Open folder") are given by the controller that opened it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.gui.notices import FAILED_COLOR
from modelmanager.gui.reports import Report


class ReportDialog(QDialog):
    """One job's report: a summary line, its sections in a tree, Close and the given actions."""

    def __init__(
        self, report: Report, parent: QWidget | None = None,
        actions: dict[str, Callable[[], object]] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.report = report
        self.setWindowTitle(report.title)
        self.setModal(False)
        self.resize(720, 420 if report.sections else 160)
        layout = QVBoxLayout(self)
        self.summary = QLabel(report.summary)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if not report.ok:
            self.summary.setStyleSheet(f"color: {FAILED_COLOR}; font-weight: bold;")
        layout.addWidget(self.summary)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setColumnCount(1)
        for heading, lines in report.sections:
            top = QTreeWidgetItem([f"{heading} ({len(lines)})"])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            if not report.ok and heading not in ("Files", "Transient read errors"):
                top.setForeground(0, QBrush(QColor(FAILED_COLOR)))
            top.addChildren([QTreeWidgetItem([line]) for line in lines])
            self.tree.addTopLevelItem(top)
            top.setExpanded(len(lines) <= 50)
        self.tree.setVisible(bool(report.sections))
        layout.addWidget(self.tree, 1)
        if not report.sections:
            layout.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.buttons: dict[str, QPushButton] = {}
        for text, run in (actions or {}).items():
            button = buttons.addButton(text, QDialogButtonBox.ButtonRole.ActionRole)
            button.clicked.connect(run)
            self.buttons[text] = button
        layout.addWidget(buttons)

    def lines(self) -> dict[str, list[str]]:
        """Each section's lines as shown (for tests and the screenshot check)."""
        out = {}
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            assert top is not None
            heading = top.text(0).rsplit(" (", 1)[0]
            children = (top.child(j) for j in range(top.childCount()))
            out[heading] = [c.text(0) for c in children if c is not None]
        return out
