"""Model > Redundancy policy… and Model > Codec…: choose, preview, then apply (no I/O here).

The dialogs only ask; the controller (:mod:`modelmanager.gui.controllers.model_actions`) reads
the preview and runs the change as jobs, and tells the dialog what it found. Apply stays off
until a preview says the devices can take the policy: nothing changes on a refused one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.codecs.base import AUTO, CodecSettings
from modelmanager.core.redundancy.plans import PolicyPlan
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.notices import FAILED_COLOR

#: The codecs a user may choose, as ``codec set`` names them.
CODECS = (AUTO, "zstd", "bytegroup", "raw")
#: What "repository default" is called in the scope box.
REPOSITORY = "Repository default"


def _scope_box(model: str | None) -> QComboBox:
    """The model (when one is selected) or the repository default."""
    box = QComboBox()
    if model is not None:
        box.addItem(shown(f"Model {model}"), model)
    box.addItem(REPOSITORY, None)
    return box


def _plain(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


def plan_text(plan: PolicyPlan) -> str:
    """The preview in words: pieces and bytes written and removed, and what it survives."""
    if not plan.chunks:
        changes = "Every stored chunk already matches: nothing is written or removed."
    else:
        removes = (f"removes {plural(plan.remove_pieces, 'piece')} "
                   f"({human_bytes(plan.remove_bytes)})" if plan.remove_pieces
                   else "removes nothing")  # fmt: skip
        writes = (f"writes {plural(plan.write_pieces, 'piece')} "
                  f"({human_bytes(plan.write_bytes)})" if plan.write_pieces
                  else "writes nothing")  # fmt: skip
        changes = f"Converts {plural(plan.chunks, 'chunk')}: {writes}, {removes}."
    survives = (f"Survives losing {plural(plan.tolerates, 'device')}." if plan.tolerates
                else "Survives losing no device: one lost device loses data.")  # fmt: skip
    return f"{changes}\n{survives}"


class PolicyDialog(QDialog):
    """copies=N or ec=K+M for a model or the repository; a preview before Apply."""

    #: (policy, model or None): read the preview of this choice.
    preview_wanted = Signal(str, object)
    #: (policy, model or None): convert to this policy.
    apply_wanted = Signal(str, object)

    def __init__(self, model: str | None, current: str, devices: int,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Redundancy policy")
        self.setMinimumWidth(480)
        self.scope = _scope_box(model)
        self.kind = QComboBox()
        self.kind.addItem("Whole copies", "copies")
        self.kind.addItem("Erasure coding", "ec")
        self.copies = QSpinBox(minimum=1, maximum=16, value=2)
        self.data = QSpinBox(minimum=1, maximum=32, value=4)
        self.parity = QSpinBox(minimum=1, maximum=16, value=2)
        usable = plural(devices, "device")
        self.current = _plain(shown(f"Now: {current} ({usable} can take data)"))
        form = QFormLayout()
        form.addRow("Applies to", self.scope)
        form.addRow("Kind", self.kind)
        form.addRow("Copies", self.copies)
        form.addRow("Data pieces (K)", self.data)
        form.addRow("Parity pieces (M)", self.parity)
        self.form = form
        self.preview = _plain("Reading the preview…")
        self.preview.setMinimumHeight(48)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button: QPushButton = buttons.addButton(
            "Apply", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self._apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.current)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(buttons)
        self.plan: PolicyPlan | None = None
        for box in (self.copies, self.data, self.parity):
            box.valueChanged.connect(self._changed)
        self.kind.currentIndexChanged.connect(self._changed)
        self.scope.currentIndexChanged.connect(self._changed)
        if current.startswith("ec="):
            k, _, m = current[3:].partition("+")
            self.kind.setCurrentIndex(1)
            self.data.setValue(int(k))
            self.parity.setValue(int(m))
        elif current.startswith("copies="):
            self.copies.setValue(int(current[7:]))
        self._show_kind()

    @property
    def model(self) -> str | None:
        """The model chosen, None for the repository default."""
        value: str | None = self.scope.currentData()
        return value

    def policy(self) -> str:
        """The chosen policy as ``copies=N`` or ``ec=K+M`` (what the CLI takes)."""
        if self.kind.currentData() == "ec":
            return f"ec={self.data.value()}+{self.parity.value()}"
        return f"copies={self.copies.value()}"

    def _show_kind(self) -> None:
        ec = self.kind.currentData() == "ec"
        self.form.setRowVisible(self.copies, not ec)
        self.form.setRowVisible(self.data, ec)
        self.form.setRowVisible(self.parity, ec)

    def _changed(self) -> None:
        self._show_kind()
        self.request_preview()

    def request_preview(self) -> None:
        """Ask for the preview of what is chosen now; Apply waits for it."""
        self.plan = None
        self.apply_button.setEnabled(False)
        self.preview.setStyleSheet("")
        self.preview.setText(f"Reading what {self.policy()} would change…")
        self.preview_wanted.emit(self.policy(), self.model)

    def show_plan(self, policy: str, model: str | None, plan: PolicyPlan) -> None:
        """The preview of ``policy`` (ignored when the choice has changed since)."""
        if (policy, model) != (self.policy(), self.model):
            return
        self.plan = plan
        self.preview.setStyleSheet("")
        self.preview.setText(plan_text(plan))
        self.apply_button.setEnabled(True)

    def show_refusal(self, policy: str, model: str | None, message: str) -> None:
        """The service refused ``policy``: its one line, and Apply stays off."""
        if (policy, model) != (self.policy(), self.model):
            return
        self.plan = None
        self.preview.setStyleSheet(f"color: {FAILED_COLOR};")
        self.preview.setText(message)
        self.apply_button.setEnabled(False)

    def _apply(self) -> None:
        if self.plan is not None:
            self.apply_wanted.emit(self.policy(), self.model)
            self.accept()


class CodecDialog(QDialog):
    """The codec (auto, zstd, bytegroup, raw) and level new chunks of a model get."""

    #: (settings, model or None): set this codec.
    apply_wanted = Signal(object, object)

    def __init__(self, model: str | None, current: CodecSettings,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Codec")
        self.setMinimumWidth(420)
        self.scope = _scope_box(model)
        self.codec = QComboBox()
        for name in CODECS:
            self.codec.addItem(name, name)
        self.codec.setCurrentIndex(max(0, self.codec.findData(current.name)))
        self.level = QSpinBox(minimum=1, maximum=22, value=current.level)
        self.level.setToolTip("zstd's level (1 is fast and compresses model weights as well)")
        form = QFormLayout()
        form.addRow("Applies to", self.scope)
        form.addRow("Codec", self.codec)
        form.addRow("Level", self.level)
        note = _plain(shown(f"Now: {current.name}, level {current.level}. New chunks get the "
                            "codec; chunks already stored keep theirs."))  # fmt: skip
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button: QPushButton = buttons.addButton(
            "Apply", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.apply_button.clicked.connect(self._apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.codec.currentIndexChanged.connect(self._levels)
        self._levels()

    @property
    def model(self) -> str | None:
        """The model chosen, None for the repository default."""
        value: str | None = self.scope.currentData()
        return value

    def settings(self) -> CodecSettings:
        """The chosen codec and level."""
        return CodecSettings(self.codec.currentData(), self.level.value())

    def _levels(self) -> None:
        self.level.setEnabled(self.codec.currentData() in (AUTO, "zstd"))

    def _apply(self) -> None:
        self.apply_wanted.emit(self.settings(), self.model)
        self.accept()
