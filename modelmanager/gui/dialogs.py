"""The import dialog shown when files or folders are dropped on the window, and the log viewer.

Before an import starts the dialog shows the source's size, the stored size to expect (the
policy's copies or erasure overhead times the size, before compression: "about") and the
devices its pieces can land on; the controller reads the sizes and devices as a job.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
)

from modelmanager import logs
from modelmanager.core.codecs import CODEC_NAMES
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.names import check_label, check_model_name
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.errors import UserError

#: Policies offered in the list (any other can be typed).
POLICY_CHOICES = ("copies=1", "copies=2", "copies=3", "ec=2+1", "ec=4+2")


def stored_estimate(size: int, policy: str) -> str:
    """About how much ``size`` bytes take stored under ``policy`` (before compression)."""
    try:
        p = Policy.parse(policy)
    except UserError:
        return "—"
    what = (f"{p.copies} {'copy' if p.copies == 1 else 'copies'}" if not p.erasure
            else f"ec {p.k}+{p.m}, {p.overhead:.2f} times the size")  # fmt: skip
    return (f"about {human_bytes(size * p.overhead)} ({what}; compression usually "
            "makes it less)")  # fmt: skip


def suggested_name(paths: list[Path]) -> str:
    """A model name from the first dropped item: its folder name, or its file name's stem."""
    first = paths[0]
    stem = first.name if first.is_dir() else first.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    return name or "model"


class ImportDialog(QDialog):
    """Model (new, or a new version of an existing one), message, labels and codec."""

    def __init__(
        self, paths: list[Path], existing: list[str], parent: object = None,
        default_policy: str = "copies=1",
    ) -> None:  # fmt: skip
        super().__init__(parent)  # type: ignore[arg-type]
        self.setWindowTitle("Import checkpoint")
        self.setMinimumWidth(540)
        self.paths = paths
        form = QFormLayout(self)
        names = ", ".join(p.name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        what = QLabel(shown(names))
        what.setTextFormat(Qt.TextFormat.PlainText)
        form.addRow("Files:", what)
        self.size_label = QLabel("Reading sizes…")
        form.addRow("Size:", self.size_label)
        self.stored_label = QLabel("")
        self.stored_label.setWordWrap(True)
        form.addRow("Stored:", self.stored_label)
        self.devices_label = QLabel("")
        self.devices_label.setTextFormat(Qt.TextFormat.PlainText)
        self.devices_label.setWordWrap(True)
        form.addRow("Lands on:", self.devices_label)
        self.source_bytes: int | None = None
        self.device_names: list[str] = []
        self.model_policies: dict[str, str] = {}
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(existing)
        self.model.setCurrentText(suggested_name(paths))
        self.model.setToolTip("A new name makes a new model; an existing one adds a version")
        self.model.currentTextChanged.connect(lambda _text: self._estimate())
        form.addRow("Model:", self.model)
        self.message = QLineEdit()
        self.message.setPlaceholderText("what this version is")
        form.addRow("Message:", self.message)
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("e.g. prod, rc1 (comma separated)")
        form.addRow("Labels:", self.labels)
        self.codec = QComboBox()
        self.codec.addItems(CODEC_NAMES)
        form.addRow("Compression:", self.codec)
        self.policy = QComboBox()
        self.policy.setEditable(True)
        self.default_value = default_policy
        self.default_policy = f"repository default ({default_policy})"
        self.policy.addItems([self.default_policy, *POLICY_CHOICES])
        self.policy.setToolTip("copies=N keeps N whole copies on different devices; ec=K+M "
                               "splits each chunk into K data and M parity fragments")  # fmt: skip
        form.addRow("Redundancy:", self.policy)
        self.policy.currentTextChanged.connect(lambda _text: self._estimate())
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setStyleSheet("color: #c8372d")
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        buttons.accepted.connect(self._check_and_accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def set_source(self, size: int, files: int, devices: list[str],
                   model_policies: dict[str, str] | None = None) -> None:  # fmt: skip
        """What the controller read: the source's bytes and files, the devices that take data,
        and the existing models' own policies (a new version of one keeps its model's)."""
        self.model_policies = model_policies or {}
        self.source_bytes = size
        self.size_label.setText(f"{human_bytes(size)} in {plural(files, 'file')}")
        self.device_names = devices
        self._estimate()

    def effective_policy(self) -> str:
        """The policy the import writes with: the one chosen, or the repository default."""
        chosen = self.chosen_policy()
        if chosen is not None:
            return chosen
        return self.model_policies.get(self.model.currentText().strip(), self.default_value)

    def _estimate(self) -> None:
        if self.source_bytes is None:
            return
        policy = self.effective_policy()
        self.stored_label.setText(stored_estimate(self.source_bytes, policy))
        names = self.device_names
        try:
            pieces = Policy.parse(policy).pieces
        except UserError:
            pieces = 0
        spread = (f" (each chunk on {pieces} of them)" if 0 < pieces < len(names)
                  else f" (too few: {policy} needs {pieces})" if pieces > len(names)
                  else "")  # fmt: skip
        self.devices_label.setText(shown(", ".join(names)) + spread if names
                                   else "no device can take data now")  # fmt: skip

    def set_default_policy(self, policy: str) -> None:
        """Name the repository's default anew (it was changed while the dialog was open)."""
        was_default = self.policy.currentText() == self.default_policy
        self.default_value = policy
        self.default_policy = f"repository default ({policy})"
        self.policy.setItemText(0, self.default_policy)
        if was_default:
            self.policy.setCurrentText(self.default_policy)
        self._estimate()

    def chosen_policy(self) -> str | None:
        """The redundancy policy typed or picked; None for the repository's default."""
        text = self.policy.currentText().strip()
        return None if text in ("", self.default_policy) else text

    def _check_and_accept(self) -> None:
        """Accept only a valid model name, labels and policy; otherwise say what is wrong."""
        policy = self.chosen_policy()
        try:
            check_model_name(self.model.currentText().strip())
            for label in self.label_list():
                check_label(label)
            if policy is not None:
                Policy.parse(policy)
        except UserError as e:
            self.error.setText(str(e))
            return
        self.accept()

    def label_list(self) -> list[str]:
        return [x.strip() for x in self.labels.text().split(",") if x.strip()]


class LogDialog(QDialog):
    """Help > Show log: the end of the log file, read-only, and a button to its folder."""

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self.setWindowTitle("ModelManager log")
        self.resize(900, 560)
        self.path = logs.log_path()
        layout = QVBoxLayout(self)
        where = QLabel(shown(str(self.path)))
        where.setTextFormat(Qt.TextFormat.PlainText)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(where)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        lines = [shown(line) for line in logs.read_tail().splitlines()]  # names from files
        self.text.setPlainText("\n".join(lines) or "Nothing has been logged yet.")
        self.text.moveCursor(QTextCursor.MoveOperation.End)  # the newest lines
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        folder = buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        folder.clicked.connect(self.open_folder)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def open_folder(self) -> bool:
        """Show the log folder in the desktop's file manager."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path.parent)))
