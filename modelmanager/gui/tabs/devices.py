"""The Devices tab: capacity, usage and state of each storage device, and devices sharing a
file system; add, rename / weight / tier, offline / online, drain, remove a dead device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.jobs import JobContext
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.context import WindowContext
from modelmanager.gui.device_dialogs import DeviceSettingsDialog, ForgetDeviceDialog
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT
from modelmanager.gui.notices import FAILED_COLOR
from modelmanager.services import devices, redundancy
from modelmanager.services.device_plans import ForgetPlan, sharing_warning

COLUMNS = ("Device", "State", "Tier", "Weight", "Usage", "Free", "Ours", "Chunks", "Hot",
           "File system", "Path")  # fmt: skip
USAGE, FREE, OURS, HOT, SHARED = 4, 5, 6, 8, 9
#: Bar steps: a percentage with one decimal (byte counts never reach Qt's 32-bit ints).
BAR_STEPS = 1000


def usage_bar(info: devices.DeviceInfo) -> QProgressBar:
    """How full the device's file system is, scaled to ``BAR_STEPS`` (64-bit sizes safe)."""
    bar = QProgressBar()
    bar.setRange(0, BAR_STEPS)
    if info.capacity:
        taken = info.capacity - (info.free or 0)
        bar.setValue(round(BAR_STEPS * taken / info.capacity))
        bar.setFormat(f"{100 * taken / info.capacity:.0f} % of {human_bytes(info.capacity)}")
        bar.setToolTip(f"{human_bytes(taken)} used, {human_bytes(info.free or 0)} free; "
                       f"{human_bytes(info.used)} of it ModelManager's pieces")  # fmt: skip
    else:
        bar.setValue(0)
        bar.setFormat("not mounted" if not info.available else "size unknown")
    return bar


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
        # The bar's text ("70 % of 252.0 GiB") needs its room: a cell widget is not measured
        # by ResizeToContents, and a stretched column got only what the others left.
        header.setSectionResizeMode(USAGE, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(USAGE, 170)
        header.setStretchLastSection(True)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add device…")
        self.add_button.clicked.connect(self.choose_device)
        self.settings_button = QPushButton("Settings…")
        self.settings_button.setToolTip("Rename the device, set its weight and tier")
        self.settings_button.clicked.connect(self.edit_selected)
        self.toggle_button = QPushButton("Take offline / bring online")
        self.toggle_button.clicked.connect(self.toggle_selected)
        self.drain_button = QPushButton("Drain and remove")
        self.drain_button.clicked.connect(self.drain_selected)
        self.remove_button = QPushButton("Remove dead device…")
        self.remove_button.setToolTip("Forget a device that cannot be read (previewed first)")
        self.remove_button.clicked.connect(self.remove_selected)
        for b in (self.add_button, self.settings_button, self.toggle_button, self.drain_button,
                  self.remove_button):  # fmt: skip
            buttons.addWidget(b)
        buttons.addStretch()
        self.warning = QLabel()
        self.warning.setTextFormat(Qt.TextFormat.PlainText)
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(f"color: {FAILED_COLOR};")
        self.warning.hide()
        # After a removal: what is below policy now, and the way back to it.
        self.removed = QLabel()
        self.removed.setTextFormat(Qt.TextFormat.PlainText)
        self.removed.setWordWrap(True)
        self.repair_button = QPushButton("Repair now")
        self.repair_button.clicked.connect(self.repair)
        after = QHBoxLayout()
        after.addWidget(self.removed, 1)
        after.addWidget(self.repair_button)
        self.removed.hide()
        self.repair_button.hide()
        self.settings_dialog: DeviceSettingsDialog | None = None
        self.forget_dialog: ForgetDeviceDialog | None = None
        self.added_box: QMessageBox | None = None
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.warning)
        layout.addLayout(after)
        layout.addWidget(self.table)

    def refresh(self) -> None:
        ws = self.context.ws
        self.context.runner.submit("Read devices", lambda _ctx: devices.list_devices(ws), self.show)

    def show(self, infos: list[devices.DeviceInfo]) -> None:  # type: ignore[override]
        self.infos = infos
        self.table.setRowCount(len(infos))
        for row, info in enumerate(infos):
            d = info.device
            free = human_bytes(info.free) if info.free is not None else "-"
            shared = (f"shared with {', '.join(info.shares_with)}" if info.shares_with
                      else "own")  # fmt: skip
            ours = human_bytes(info.used) if info.available or info.used else "-"
            hot = human_bytes(info.hot) if info.hot else "-"  # pinned versions' plain copies
            cells = [d.name, info.status, d.tier, f"{d.weight:g}", "", free, ours,
                     str(info.chunks), hot, shared, str(info.root)]  # fmt: skip
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
            item = self.table.item(row, SHARED)
            if info.shares_with and item is not None:
                item.setForeground(QColor(FAILED_COLOR))
                item.setToolTip("Copies on devices of one file system are not independent")
            self.table.setCellWidget(row, USAGE, usage_bar(info))
        order = [i.device.name for i in infos]
        groups = {tuple(sorted((i.device.name, *i.shares_with), key=order.index))
                  for i in infos if i.shares_with}  # fmt: skip
        text = sharing_warning(sorted(groups, key=lambda g: order.index(g[0])))
        self.warning.setText(f"Warning: {text}." if text else "")
        self.warning.setVisible(bool(text))

    def selected(self) -> devices.DeviceInfo | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.infos[rows.pop()] if len(rows) == 1 else None

    def _run(self, title: str, fn: Any) -> None:
        """Run a device change as a job; the window refreshes what it changed (storage)."""
        ws = self.context.ws

        def done(result: devices.DeviceChange | devices.RemoveResult) -> None:
            self.context.apply_changes(ws, result.changes)
            if isinstance(result, devices.DeviceChange) and result.shares_with:
                self.context.notify(f"Warning: {result.sharing_text()}", 0)

        self.context.runner.submit(title, fn, done, writes=ws.repo.root)

    def choose_device(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder on the device")
        if folder:
            self.add(Path(folder))

    def add(self, folder: Path) -> None:
        ws = self.context.ws

        def added(result: devices.DeviceChange) -> None:
            self.context.apply_changes(ws, result.changes)
            if result.shares_with:  # said where the user looks, and kept until closed
                box = QMessageBox(QMessageBox.Icon.Warning, "Same file system",
                                  result.sharing_text() + ".", QMessageBox.StandardButton.Ok,
                                  self)  # fmt: skip
                box.setTextFormat(Qt.TextFormat.PlainText)
                self.added_box = box
                box.open()

        self.context.runner.submit(
            f"Add device {folder.name}",
            lambda _ctx: devices.add_device(ws, folder, lock_timeout=GUI_LOCK_WAIT),
            added, writes=ws.repo.root,
        )  # fmt: skip

    def edit_selected(self) -> None:
        """Rename the selected device, set its weight and tier (a small dialog)."""
        info = self.selected()
        if info is None:
            return
        dialog = DeviceSettingsDialog(info.device, self)
        dialog.accepted.connect(lambda: self._save_settings(dialog))
        self.settings_dialog = dialog
        dialog.open()

    def _save_settings(self, dialog: DeviceSettingsDialog) -> None:
        rename, weight, tier = dialog.changes()
        if rename is None and weight is None and tier is None:
            return
        ws, name = self.context.ws, dialog.device.name

        def run(_ctx: JobContext) -> Any:
            return devices.set_device(ws, name, rename=rename, weight=weight, tier=tier,
                                      lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        self._run(f"Change device {name}", run)

    def remove_selected(self) -> None:
        """Preview forgetting the selected device (a job: it looks at every chunk), then ask;
        the removal is refused while it would lose data unless the user confirms it."""
        info = self.selected()
        if info is None:
            return
        ws, name = self.context.ws, info.device.name

        def preview(_ctx: JobContext) -> ForgetPlan:
            return devices.preview_forget(ws, name)

        self.context.runner.submit(f"Plan removing {name}", preview, self.confirm_forget)

    def confirm_forget(self, plan: ForgetPlan) -> None:
        dialog = ForgetDeviceDialog(plan, self)
        dialog.accepted.connect(lambda: self._forget(plan.device, dialog.allow_loss))
        self.forget_dialog = dialog
        dialog.open()

    def _forget(self, name: str, allow_loss: bool) -> None:
        ws = self.context.ws

        def run(ctx: JobContext) -> Any:
            return devices.remove_device(ws, name, drain=False, force=True,
                                         allow_loss=allow_loss, ctx=ctx,
                                         lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(result: devices.RemoveResult) -> None:
            self.context.apply_changes(ws, result.changes)
            gone = result.forgotten
            under = plural(gone.under_replicated, "chunk") if gone else "its chunks"
            lost = f"; {plural(gone.lost, 'chunk')} lost" if gone and gone.lost else ""
            self.removed.setText(f"Removed device {name}: {under} below policy until "
                                 f"Repair{lost}.")  # fmt: skip
            self.removed.show()
            self.repair_button.show()

        self.context.runner.submit(f"Remove device {name}", run, done, writes=ws.repo.root)

    def repair(self) -> None:
        """Rebuild what the removed device held onto the others (``repair``, with progress)."""
        ws = self.context.ws
        self.repair_button.setEnabled(False)

        def run(ctx: JobContext) -> redundancy.RepairReport:
            return redundancy.repair(ws, ctx=ctx, lock_timeout=GUI_LOCK_WAIT)

        def done(report: redundancy.RepairReport) -> None:
            self.context.apply_changes(ws, report.changes)
            self.repair_button.setEnabled(True)
            if report.ok:
                self.removed.hide()
                self.repair_button.hide()
            else:
                self.removed.setText(f"Repair rebuilt {plural(report.repaired_chunks, 'chunk')};"
                                     f" {plural(len(report.lost), 'chunk')} lost, "
                                     f"{len(report.failed)} not repaired (see Scrub).")  # fmt: skip

        self.context.runner.submit("Repair", run, done, writes=ws.repo.root)

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
