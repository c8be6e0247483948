"""File > Recover repository…: the new main folder, the surviving device folders, repair or not.

Each folder is checked as it is added and again before starting, so a wrong folder is named at
once (not after a job fails). The dialog stays open while the recovery runs, with its progress
and a Cancel that stops it; an error is shown in it as one line, and the folders can be fixed.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.placement import IDENTITY_FILE, read_identity
from modelmanager.core.repo.replicas import META
from modelmanager.core.repo.versions import CONFIG_KEY
from modelmanager.core.text import shown


def device_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be read as a surviving device (None: it can), naming it."""
    if not folder.is_dir():
        return f"{folder} is not a folder (or cannot be read)"
    missing = [name for name in (IDENTITY_FILE, f"{META}/{CONFIG_KEY}")
               if not (folder / name).is_file()]  # fmt: skip
    if missing:
        return f"{folder} is not a device folder: it has no {' and no '.join(missing)}"
    if read_identity(folder) is None:
        return f"{folder}: its {IDENTITY_FILE} is damaged or unreadable"
    return None


def destination_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot become the new main folder (None: it is new or empty)."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"{folder} is a file; choose an empty or new folder for the new main folder"
    try:
        empty = not any(folder.iterdir())
    except OSError as e:
        return f"{folder} cannot be read ({e.strerror or e})"
    return None if empty else f"{folder} is not empty; choose an empty or new folder"


def _error_label() -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setStyleSheet("color: #c8372d")
    return label


class RecoverDialog(QDialog):
    """Asks where the recovered repository goes and which device folders survive."""

    #: The user asked to start: new main folder, device folders, repair afterwards.
    start = Signal(object, object, bool)
    #: The user asked to stop the running recovery.
    stop = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recover repository")
        self.setMinimumWidth(620)
        self.busy = False
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Rebuild a repository whose main folder is lost, from the metadata copy every "
            "device keeps. Devices you do not list are set offline; repair then rebuilds "
            "their pieces from those that survive."
        )  # fmt: skip
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.dest = QLineEdit()
        self.dest.setPlaceholderText("an empty or new folder")
        self.choose_dest = QPushButton("Choose…")
        self.choose_dest.clicked.connect(self._choose_dest)
        row = QHBoxLayout()
        row.addWidget(self.dest)
        row.addWidget(self.choose_dest)
        form.addRow("New repository folder:", row)
        self.sources = QListWidget()
        self.sources.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.sources.setMinimumHeight(110)
        self.add_button = QPushButton("Add…")
        self.add_button.clicked.connect(self._choose_source)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons_column = QVBoxLayout()
        buttons_column.addWidget(self.add_button)
        buttons_column.addWidget(self.remove_button)
        buttons_column.addStretch()
        row = QHBoxLayout()
        row.addWidget(self.sources)
        row.addLayout(buttons_column)
        form.addRow("Surviving device folders:", row)
        layout.addLayout(form)
        self.repair = QCheckBox("Repair afterwards (rebuild missing pieces from what survives)")
        self.repair.setChecked(True)
        layout.addWidget(self.repair)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.error = _error_label()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.go = self.buttons.addButton("Recover", QDialogButtonBox.ButtonRole.AcceptRole)
        self.go.setDefault(True)
        self.buttons.accepted.connect(self.check_and_start)
        self.buttons.rejected.connect(self._cancel)
        layout.addWidget(self.buttons)
        self._update_buttons()
        self.sources.itemSelectionChanged.connect(self._update_buttons)

    # -- folders ------------------------------------------------------------------------

    def _choose_dest(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New folder for the recovered repository")
        if folder:
            self.dest.setText(folder)

    def _choose_source(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A surviving device folder")
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, folder: Path) -> bool:
        """List ``folder`` as a surviving device if it is one; else say why, naming it."""
        folder = folder.absolute()
        problem = device_folder_problem(folder)
        if problem is not None:
            self.error.setText(shown(problem))
            return False
        if str(folder) not in self.folders():
            name = str((read_identity(folder) or {}).get("name", "?"))
            self.sources.addItem(shown(f"{name}    {folder}"))  # the device's name, then where
            self.sources.item(self.sources.count() - 1).setData(Qt.ItemDataRole.UserRole,
                                                                str(folder))  # fmt: skip
        self.error.clear()
        self._update_buttons()
        return True

    def remove_selected(self) -> None:
        """Take the selected folders off the list."""
        for item in self.sources.selectedItems():
            self.sources.takeItem(self.sources.row(item))
        self._update_buttons()

    def folders(self) -> list[str]:
        """The device folders listed, in order."""
        items = (self.sources.item(i) for i in range(self.sources.count()))
        return [str(item.data(Qt.ItemDataRole.UserRole)) for item in items if item is not None]

    def problems(self) -> list[str]:
        """Everything wrong with the folders as they are now (each checked again)."""
        text = self.dest.text().strip()
        found = [] if text else ["Choose the new repository folder (empty or new)"]
        dest = Path(text).expanduser().absolute() if text else None
        if dest is not None:
            found += [p for p in [destination_problem(dest)] if p]
        if not self.folders():
            found.append("Add at least one surviving device folder")
        for folder in map(Path, self.folders()):
            if dest is not None and folder == dest:
                found.append(f"{folder} is a device folder; the new main folder must be another")
            found += [p for p in [device_folder_problem(folder)] if p]
        return found

    # -- running ------------------------------------------------------------------------

    def check_and_start(self) -> None:
        """Start only when every folder is right; otherwise say what is wrong (first one)."""
        if self.busy:
            return
        problems = self.problems()
        if problems:
            self.error.setText(shown(problems[0]))
            return
        self.error.clear()
        dest = Path(self.dest.text().strip()).expanduser().absolute()
        self.start.emit(dest, [Path(f) for f in self.folders()], self.repair.isChecked())

    def set_running(self, running: bool) -> None:
        """While the job runs: the folders cannot change, Cancel stops it, progress shows."""
        self.busy = running
        for widget in (self.dest, self.choose_dest, self.sources, self.repair):
            widget.setEnabled(not running)
        self.progress.setVisible(running)
        if running:
            self.progress.setRange(0, 0)  # busy until repair reports how much there is
        self._update_buttons()

    def show_progress(self, done: int, total: int, text: str) -> None:
        """The job's progress (repair's, in bytes or chunks)."""
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
        self.progress.setFormat(shown(f"{text}  %p%") if text else "%p%")

    def failed(self, message: str) -> None:
        """The job stopped: say why in one line; the folders can be fixed and tried again."""
        self.set_running(False)
        self.error.setText(shown(message))

    def _update_buttons(self) -> None:
        self.go.setEnabled(not self.busy)
        self.add_button.setEnabled(not self.busy)
        self.remove_button.setEnabled(not self.busy and bool(self.sources.selectedItems()))

    def _cancel(self) -> None:
        if self.busy:
            self.stop.emit()
        else:
            self.reject()

    def reject(self) -> None:
        """Escape or closing the dialog stops a running recovery instead of hiding it."""
        if self.busy:
            self.stop.emit()
            return
        super().reject()
