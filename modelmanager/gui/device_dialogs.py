"""Devices tab dialogs: a device's settings (name, weight, tier) and the removal of a dead
device with its preview. They only ask; the tab runs the change as a job (no I/O here)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.placement import MAIN, TIERS, Device
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.services.device_plans import ForgetPlan


def _plain(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


class DeviceSettingsDialog(QDialog):
    """Rename a device, set its weight and tier (``device set --rename --weight --tier``)."""

    def __init__(self, device: Device, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.setWindowTitle(f"Device {device.name}")
        self.name = QLineEdit(device.name)
        self.name.setMaxLength(64)
        if device.name == MAIN:  # the repository folder's own device keeps its name
            self.name.setEnabled(False)
            self.name.setToolTip("'main' is the repository folder itself; it keeps its name")
        self.weight = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1e6, value=device.weight)
        self._shown_weight = self.weight.value()  # as rounded for display: unchanged if kept
        self.weight.setToolTip("Share of new data placed on this device, relative to others")
        self.tier = QComboBox()
        self.tier.addItems(list(TIERS))
        self.tier.setCurrentText(device.tier)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Weight", self.weight)
        form.addRow("Tier", self.tier)
        note = _plain("Its data stays where it is; a new weight applies to new data and to the "
                      "next rebalance.")  # fmt: skip
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.save_button: QPushButton = buttons.addButton(
            "Save", QDialogButtonBox.ButtonRole.AcceptRole
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.name.textChanged.connect(lambda text: self.save_button.setEnabled(bool(text.strip())))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def changes(self) -> tuple[str | None, float | None, str | None]:
        """(new name, weight, tier), each None where it is unchanged."""
        name = self.name.text().strip()
        weight = self.weight.value()
        tier = self.tier.currentText()
        return (
            name if name != self.device.name else None,
            weight if weight != self._shown_weight else None,
            tier if tier != self.device.tier else None,
        )


def forget_text(plan: ForgetPlan) -> str:
    """The removal preview in words: what it holds, what becomes under-replicated or lost."""
    held = (f"It holds {plural(plan.pieces, 'piece')} ({human_bytes(plan.bytes)})."
            if plan.readable else "It cannot be read: every chunk the other devices do not "
            "hold in full is counted.")  # fmt: skip
    under = (f"{plural(plan.under_replicated, 'chunk')} become under-replicated until Repair"
             + (f" (models: {', '.join(plan.models_under)})" if plan.models_under else "")
             + ".")  # fmt: skip
    lost = (f"LOST: {plan.loss_text()}." if plan.lost
            else "No chunk is lost: every one is readable from other devices.")  # fmt: skip
    return "\n".join(shown(line) for line in (held, under, lost))  # names shown safely


class ForgetDeviceDialog(QDialog):
    """Remove a dead device: the preview, and (when data would be lost) an explicit
    confirmation before the Remove button is enabled."""

    def __init__(self, plan: ForgetPlan, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setWindowTitle(f"Remove device {plan.device}")
        self.setMinimumWidth(460)
        self.preview = _plain(forget_text(plan))
        self.confirm = QCheckBox(f"I accept losing {plural(plan.lost, 'chunk')} for good")
        self.confirm.setVisible(bool(plan.lost))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.remove_button: QPushButton = buttons.addButton(
            "Remove and lose data" if plan.lost else "Remove device",
            QDialogButtonBox.ButtonRole.AcceptRole,
        )
        self.remove_button.setEnabled(not plan.lost)
        self.confirm.toggled.connect(self.remove_button.setEnabled)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(_plain("The device is forgotten; nothing is deleted from its folder, "
                                "and adding the folder again brings it back."))  # fmt: skip
        layout.addWidget(self.preview)
        layout.addWidget(self.confirm)
        layout.addWidget(buttons)

    @property
    def allow_loss(self) -> bool:
        """True when the user confirmed losing the chunks the preview names."""
        return bool(self.plan.lost) and self.confirm.isChecked()
