"""Maintenance > Apply hot tier…: the hot-tier job's plan, shown before anything is done.

The dialog only shows and asks; the controller reads the plan (a job, nothing written) and,
on Apply, runs the same plan as a writing job (refused if it changed meanwhile). Rows say
which versions are promoted, demoted, left cold or kept, then what each hot device gets:
chunks copied and dropped, and how full its volume is left against its fill limit.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes
from modelmanager.services.hot_tier import HotTierPlan
from modelmanager.services.pin_records import utc_minute


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(shown(text))
            if c in right:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    height = header.height() + sum(table.rowHeight(r) for r in range(len(rows))) + 4
    table.setMaximumHeight(max(height, 60))
    return table


def version_rows(plan: HotTierPlan) -> list[list[str]]:
    """(action, version, last use, bytes) of every version the plan decides about."""
    rows = [["Promote", m.ref, utc_minute(m.last_use), f"+{human_bytes(m.write_bytes)}"]
            for m in plan.promote]  # fmt: skip
    rows += [["Demote", m.ref, utc_minute(m.last_use), f"-{human_bytes(m.drop_bytes)}"]
             for m in plan.demote]  # fmt: skip
    rows += [["Leave cold (does not fit)", m.ref, utc_minute(m.last_use), human_bytes(m.hot_bytes)]
             for m in plan.left_out]  # fmt: skip
    rows += [["Keep hot", ref, "", ""] for ref in plan.kept]
    return rows


def device_rows(plan: HotTierPlan) -> list[list[str]]:
    """(device, copied, dropped, hot copies before -> after, volume after / fill limit)."""
    out = []
    for d in plan.devices:
        limit = f"{human_bytes(d.limit)} allowed" if d.limit else "an unknown size"
        out.append([d.device.name, f"{len(d.write)} ({human_bytes(d.write_bytes)})",
                    f"{len(d.drop)} ({human_bytes(d.drop_bytes)})",
                    f"{human_bytes(d.hot_before)} → {human_bytes(d.hot_after)}",
                    f"{human_bytes(d.used_after)} of {limit}"])  # fmt: skip
    return out


class HotTierDialog(QDialog):
    """The hot-tier plan; Apply (accept) runs it, Cancel does nothing."""

    def __init__(self, plan: HotTierPlan, limit: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Apply hot tier")
        self.setMinimumWidth(640)
        self.plan = plan
        intro = QLabel(
            f"Versions loaded since {utc_minute(plan.since)} UTC are promoted hot, most recent "
            f"first, while each hot device stays under its fill limit ({limit:.0%}); "
            "promotions used least recently are demoted to make room. Versions you pinned "
            "stay hot. Demoted versions keep their pieces, so they still load."
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        rows = version_rows(plan)
        self.versions = _table(["Action", "Version", "Last used (UTC)", "Hot copies"], rows,
                               {3})  # fmt: skip
        self.devices = _table(["Hot device", "Copy", "Drop", "Hot copies", "Volume used after"],
                              device_rows(plan), {1, 2, 3, 4})  # fmt: skip
        if rows:
            layout.addWidget(self.versions)
        else:
            layout.addWidget(QLabel("No pinned or recently loaded version."))
        layout.addWidget(self.devices)
        if plan.released:
            released = QLabel(shown("Pins of removed versions marked unpinned: "
                                    + ", ".join(plan.released)))  # fmt: skip
            released.setWordWrap(True)
            layout.addWidget(released)
        self.summary = QLabel(
            "Nothing to do: the hot tier is settled." if not plan.changes_anything else
            f"Copies {human_bytes(sum(d.write_bytes for d in plan.devices))} and drops "
            f"{human_bytes(sum(d.drop_bytes for d in plan.devices))} of hot copies."
        )  # fmt: skip
        layout.addWidget(self.summary)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button: QPushButton = buttons.addButton(
            "Apply", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.apply_button.setEnabled(plan.changes_anything)
        self.apply_button.clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
