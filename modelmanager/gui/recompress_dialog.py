"""Model > Recompress…: choose a codec, see the stored size it leaves, then start.

The dialog only asks; the controller reads the preview (every chunk encoded in memory,
nothing written) and runs ``recompress`` as a job. Start waits for the preview of the
codec chosen now.
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
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.notices import FAILED_COLOR
from modelmanager.gui.policy_dialogs import CODECS
from modelmanager.services.recompress import RecompressPreview


def preview_text(p: RecompressPreview) -> str:
    """The preview in words: stored now, stored after, and the difference."""
    delta = p.stored_before - p.stored_after
    change = (f"saves {human_bytes(delta)}" if delta > 0
              else f"takes {human_bytes(-delta)} more" if delta < 0
              else "the same size")  # fmt: skip
    return (f"{plural(p.chunks, 'chunk')} ({human_bytes(p.logical)} of data) with {p.codec}: "
            f"stored now {human_bytes(p.stored_before)}, after {human_bytes(p.stored_after)} "
            f"({change}, every copy and piece counted).")  # fmt: skip


class RecompressDialog(QDialog):
    """The codec and level the stored chunks of ``refs`` are re-encoded with."""

    #: (settings): read the preview of this codec.
    preview_wanted = Signal(object)
    #: (settings): re-encode with this codec.
    start_wanted = Signal(object)

    def __init__(self, model: str, refs: list[str], current: CodecSettings,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle(f"Recompress {shown(model)}")
        self.setMinimumWidth(520)
        self.refs = refs
        self.codec = QComboBox()
        for name in CODECS:
            self.codec.addItem(name, name)
        self.codec.setCurrentIndex(max(0, self.codec.findData(current.name)))
        self.level = QSpinBox(minimum=1, maximum=22, value=current.level)
        form = QFormLayout()
        form.addRow("Codec", self.codec)
        form.addRow("Level", self.level)
        what = shown(f"Re-encodes the stored chunks of {plural(len(refs), 'version')} of "
                     f"{model} ({', '.join(refs[:3])}{' …' if len(refs) > 3 else ''}). "
                     "The files do not change; each piece is verified before it replaces "
                     "the old one. New chunks still get the codec Model > Codec… "
                     "sets.")  # fmt: skip
        note = QLabel(what)
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.PlainText)
        self.preview = QLabel("Reading the preview…")
        self.preview.setWordWrap(True)
        self.preview.setTextFormat(Qt.TextFormat.PlainText)
        self.preview.setMinimumHeight(48)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button: QPushButton = buttons.addButton(
            "Recompress", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self._start)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(buttons)
        self.shown_preview: RecompressPreview | None = None
        self.codec.currentIndexChanged.connect(self.request_preview)
        self.level.valueChanged.connect(self.request_preview)

    def settings(self) -> CodecSettings:
        """The chosen codec and level (the level counts for auto and zstd only)."""
        self.level.setEnabled(self.codec.currentData() in (AUTO, "zstd"))
        return CodecSettings(self.codec.currentData(), self.level.value())

    def request_preview(self) -> None:
        """Ask for the preview of the codec chosen now; Start waits for it."""
        self.shown_preview = None
        self.start_button.setEnabled(False)
        self.preview.setStyleSheet("")
        self.preview.setText(f"Reading what {self.settings().name} would store…")
        self.preview_wanted.emit(self.settings())

    def show_preview(self, settings: CodecSettings, preview: RecompressPreview | str) -> None:
        """The preview of ``settings`` (ignored when the choice changed since), or a refusal."""
        if settings != self.settings():
            return
        if isinstance(preview, str):
            self.preview.setStyleSheet(f"color: {FAILED_COLOR};")
            self.preview.setText(preview)
            return
        self.shown_preview = preview
        self.preview.setText(preview_text(preview))
        self.start_button.setEnabled(True)

    def _start(self) -> None:
        if self.shown_preview is not None:
            self.start_wanted.emit(self.settings())
            self.accept()
