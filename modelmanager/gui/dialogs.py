"""The import dialog shown when files or folders are dropped on the window (or chosen)."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
)

from modelmanager.core.codecs import CODEC_NAMES


def suggested_name(paths: list[Path]) -> str:
    """A model name from the first dropped item: its folder name, or its file name's stem."""
    first = paths[0]
    stem = first.name if first.is_dir() else first.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    return name or "model"


class ImportDialog(QDialog):
    """Model (new, or a new version of an existing one), message, labels and codec."""

    def __init__(self, paths: list[Path], existing: list[str], parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self.setWindowTitle("Import checkpoint")
        self.paths = paths
        form = QFormLayout(self)
        shown = ", ".join(p.name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        what = QLabel(shown)
        what.setTextFormat(what.textFormat().PlainText)
        form.addRow("Files:", what)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(existing)
        self.model.setCurrentText(suggested_name(paths))
        self.model.setToolTip("A new name makes a new model; an existing one adds a version")
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
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def label_list(self) -> list[str]:
        return [x.strip() for x in self.labels.text().split(",") if x.strip()]
