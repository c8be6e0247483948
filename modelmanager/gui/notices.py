"""Failed jobs that stay visible: the Details… box and a banner that stays until dismissed.

A failure used to show for 15 s on the status line, cut off; now the banner above the tabs
names the job and its whole message until the user dismisses it, and Details… shows the full
text (the traceback, for a bug) the Jobs tab row has too.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from modelmanager.core.text import shown
from modelmanager.core.units import plural
from modelmanager.gui.jobs_bridge import FAILED, JobRecord

#: The red of a failure (the Jobs row's state, the banner's edge), readable on light and dark.
FAILED_COLOR = "#d32f2f"


def details_box(parent: QWidget, job: JobRecord) -> QMessageBox:
    """A box with the job's whole message, and its details (the traceback of a bug) below."""
    box = QMessageBox(QMessageBox.Icon.Critical, f"{shown(job.title)} failed",
                      shown(f"{job.title} failed: {job.error}"),
                      QMessageBox.StandardButton.Close, parent)  # fmt: skip
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    details = job.details if job.details and job.details != job.error else ""
    box.setInformativeText("Help > Show log has what happened before, for a bug report.")
    if details:
        box.setDetailedText(details)
    box.setModal(False)
    box.show()
    return box


class FailureNotice(QFrame):
    """A banner naming the last failed job, with Details… and Dismiss; stays until dismissed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failure-notice")
        self.setStyleSheet(f"#failure-notice {{ border: 2px solid {FAILED_COLOR}; "
                           "border-radius: 4px; }")  # fmt: skip
        self.failed: list[JobRecord] = []
        self.box: QMessageBox | None = None  # the last Details… box (tests read it)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self.show_details)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.clicked.connect(self.dismiss)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.details_button)
        row.addWidget(self.dismiss_button)
        self.hide()

    def add(self, job: JobRecord) -> None:
        """Show that ``job`` failed (after any failures not yet dismissed)."""
        if job.state != FAILED:
            return
        self.failed.append(job)
        text = shown(f"{job.title} failed: {job.error}")
        if len(self.failed) > 1:
            text += f"  ({plural(len(self.failed) - 1, 'earlier failure')} in the Jobs tab)"
        self.label.setText(text)
        self.show()

    def show_details(self) -> None:
        """Details… of the last failure."""
        if self.failed:
            self.box = details_box(self.window(), self.failed[-1])

    def dismiss(self) -> None:
        """Hide the banner until the next failure."""
        self.failed.clear()
        self.hide()
