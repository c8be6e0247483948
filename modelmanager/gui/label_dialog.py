"""Label…: put a label on a version (new, or moved from another version) or take one off.

The dialog only chooses; the controller runs ``history.set_label`` / ``remove_label`` as jobs.
When the model's label journal has entries, the dialog lists them (newest first), as
``label log NAME`` prints them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QWidget,
)

from modelmanager.core.text import shown


class LabelDialog(QDialog):
    """Choose a label for ``ref``: Set (add or move here) or Remove (from the model)."""

    set_label = Signal(str)
    remove_label = Signal(str)

    def __init__(
        self, ref: str, labels: dict[str, int], parent: QWidget | None = None,
        journal: Sequence[Mapping[str, object]] = (),
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.ref = ref
        self.labels = labels  # the model's labels: name -> version number
        self.setWindowTitle(f"Label {shown(ref)}")
        self.setMinimumWidth(520)
        form = QFormLayout(self)
        self.name = QComboBox()
        self.name.setEditable(True)
        self.name.addItems(sorted(labels))
        self.name.setCurrentText("")
        edit = self.name.lineEdit()
        if edit is not None:
            edit.setPlaceholderText("prod, rc1, …")
        self.name.currentTextChanged.connect(self._explain)
        form.addRow("Label", self.name)
        self.note = QLabel()
        self.note.setWordWrap(True)
        form.addRow("", self.note)
        self.journal = QListWidget()
        self.journal.addItems([journal_line(e) for e in reversed(journal)])
        self.journal.setMinimumHeight(110)
        if journal:
            form.addRow("Journal", self.journal)
        else:
            self.journal.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.set_button = self.buttons.addButton("Set here", QDialogButtonBox.ButtonRole.AcceptRole)
        self.remove_button = self.buttons.addButton(
            "Remove label", QDialogButtonBox.ButtonRole.DestructiveRole
        )
        self.set_button.clicked.connect(lambda: self._done(self.set_label.emit))
        self.remove_button.clicked.connect(lambda: self._done(self.remove_label.emit))
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self._explain("")

    def _explain(self, text: str) -> None:
        name = text.strip()
        model, seq = self.ref.split("@")[0], self.labels.get(name)
        here = self.ref.split("@")[-1] == str(seq)
        self.set_button.setEnabled(bool(name) and not here)
        self.remove_button.setEnabled(seq is not None)
        if not name:
            self.note.setText("Type a new label or pick one to move or remove.")
        elif seq is None:
            self.note.setText(shown(f"New label: {model}@{name} will name {self.ref}."))
        elif here:
            self.note.setText(shown(f"{model}@{name} already names this version."))
        else:
            move = f"Set here moves it to {self.ref} (the move is journaled)."
            self.note.setText(shown(f"{model}@{name} names version {seq} now; {move}"))

    def _done(self, emit: Callable[[str], object]) -> None:
        emit(self.name.currentText().strip())
        self.accept()


def _at(seq: object) -> str:
    return f"@{seq}" if isinstance(seq, int) else "none"


def journal_line(e: Mapping[str, object]) -> str:
    """One label move: when, which label, from, to, why, who (``label log``'s words)."""
    when = str(e.get("time", ""))[:19].replace("T", " ")
    why = f" ({e['why']})" if e.get("why") else ""
    who = f" by {e.get('user', '?')}@{e.get('host', '?')}" if e.get("user") else ""
    return shown(f"{when}  {e.get('label', '')}: {_at(e.get('old'))} -> {_at(e.get('new'))}"
                 f"{why}{who}")  # fmt: skip
