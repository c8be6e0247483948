"""The Devices tab: capacity, usage and state of each storage device; add, drain, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.jobs import JobContext
from modelmanager.core.units import human_bytes
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT
from modelmanager.services import devices, redundancy

COLUMNS = ("Device", "State", "Tier", "Weight", "Usage", "Chunks", "Path")


class DevicesTab(QWidget):
    """A table of devices, refreshed in the background; actions run as jobs."""

    def __init__(self, context: WindowContext) -> None:
        super().__init__()
        self.context = context
        self.infos: list[devices.DeviceInfo] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add device…")
        self.add_button.clicked.connect(self.choose_device)
        self.toggle_button = QPushButton("Take offline / bring online")
        self.toggle_button.clicked.connect(self.toggle_selected)
        self.drain_button = QPushButton("Drain and remove")
        self.drain_button.clicked.connect(self.drain_selected)
        for b in (self.add_button, self.toggle_button, self.drain_button):
            buttons.addWidget(b)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.table)

    def refresh(self) -> None:
        ws = self.context.ws
        self.context.runner.submit("Read devices", lambda _ctx: devices.list_devices(ws), self.show)

    def show(self, infos: list[devices.DeviceInfo]) -> None:  # type: ignore[override]
        self.infos = infos
        self.table.setRowCount(len(infos))
        for row, info in enumerate(infos):
            d = info.device
            cells = [d.name, info.status, d.tier, f"{d.weight:g}", "", str(info.chunks),
                     str(info.root)]  # fmt: skip
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
            bar = QProgressBar()
            if info.capacity:
                taken = info.capacity - (info.free or 0)
                bar.setRange(0, 1000)
                bar.setValue(int(1000 * taken / info.capacity))
                bar.setFormat(f"{human_bytes(info.used)} ours, {human_bytes(info.free or 0)} free "
                              f"of {human_bytes(info.capacity)}")  # fmt: skip
            else:
                bar.setRange(0, 1)
                bar.setFormat("not mounted")
            self.table.setCellWidget(row, 4, bar)

    def selected(self) -> devices.DeviceInfo | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.infos[rows.pop()] if len(rows) == 1 else None

    def _run(self, title: str, fn: Any) -> None:
        """Run a device change as a job; the window refreshes what it changed (storage)."""
        ws = self.context.ws

        def done(result: devices.DeviceChange | devices.RemoveResult) -> None:
            self.context.apply_changes(ws, result.changes)

        self.context.runner.submit(title, fn, done, writes=ws.repo.root)

    def choose_device(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder on the device")
        if folder:
            self.add(Path(folder))

    def add(self, folder: Path) -> None:
        ws = self.context.ws
        self._run(f"Add device {folder.name}",
                  lambda _ctx: devices.add_device(ws, folder,
                                                  lock_timeout=GUI_LOCK_WAIT))  # fmt: skip

    def toggle_selected(self) -> None:
        info = self.selected()
        if info is None:
            return
        ws, name = self.context.ws, info.device.name
        state = "online" if info.device.state == "offline" else "offline"

        def run(_ctx: JobContext) -> Any:
            return devices.set_device(ws, name, state=state, lock_timeout=GUI_LOCK_WAIT)

        self._run(f"Set {name} {state}", run)

    def drain_selected(self) -> None:
        """Preview the drain (a job: it looks at every piece), then ask before moving."""
        info = self.selected()
        if info is None:
            return
        ws, name = self.context.ws, info.device.name

        def preview(_ctx: JobContext) -> redundancy.MovePlan:
            return redundancy.preview_moves(ws, draining=name)

        self.context.runner.submit(f"Plan draining {name}", preview,
                                lambda plan: self.confirm_drain(name, plan))  # fmt: skip

    def confirm_drain(self, name: str, plan: redundancy.MovePlan) -> None:
        """The drain's preview: what moves onto which device, or why it cannot be done."""
        onto = ", ".join(f"{d} ({human_bytes(b)})" for d, b in sorted(plan.onto().items()))
        if plan.stuck:
            box = QMessageBox(
                QMessageBox.Icon.Warning, f"Cannot drain {name}",
                f"{len(plan.stuck)} pieces ({human_bytes(plan.stuck_bytes)}) would fit on no "
                "other device. "
                "Add a device or free space first; nothing was changed.",
                QMessageBox.StandardButton.Close, self,
            )  # fmt: skip
        else:
            box = QMessageBox(
                QMessageBox.Icon.Question, f"Drain and remove {name}?",
                f"Moves {len(plan.moves)} pieces ({human_bytes(plan.bytes)}) off {name}"
                + (f" onto {onto}" if onto else "") + ", then removes the device. Its folder "
                "is left empty; the data stays readable throughout.",
                QMessageBox.StandardButton.Cancel, self,
            )  # fmt: skip
            go = box.addButton("Drain and remove", QMessageBox.ButtonRole.AcceptRole)
            go.clicked.connect(lambda: self._drain(name))
        self.drain_box = box
        box.open()

    def _drain(self, name: str) -> None:
        ws = self.context.ws

        def run(ctx: JobContext) -> Any:
            return devices.remove_device(ws, name, drain=True, force=False, ctx=ctx,
                                         lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        self._run(f"Drain and remove {name}", run)
