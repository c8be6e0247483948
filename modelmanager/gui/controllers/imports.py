"""Importing: the file-or-folder chooser, the import dialog and the import job it starts.

The dialog opens at once; the source's size and the devices that can take data are read as a
job (a folder may hold many files) and filled in before the user starts the import.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QWidget

from modelmanager.core.codecs import CodecSettings
from modelmanager.core.jobs import JobContext
from modelmanager.gui.changes import merged
from modelmanager.gui.context import WindowContext
from modelmanager.gui.dialogs import ImportDialog
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT, JobRecord
from modelmanager.gui.models import RepoTreeModel
from modelmanager.services import Changes
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy


def source_size(paths: list[Path]) -> tuple[int, int]:
    """(bytes, files) under ``paths``: files, and every file inside folders."""
    size = count = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for f in files:
            try:
                size += f.stat().st_size
                count += 1
            except OSError:
                continue
    return size, count


class FileOrFolderDialog(QFileDialog):
    """Pick checkpoint files, or a model folder: a folder selected when Open is pressed is
    taken as it is (double-clicking one still enters it)."""

    def accept(self) -> None:
        chosen = [Path(f) for f in self.selectedFiles()]
        if chosen and all(p.exists() for p in chosen) and any(p.is_dir() for p in chosen):
            self.filesSelected.emit([str(p) for p in chosen])
            QDialog.accept(self)
            return
        super().accept()


class ImportsController:
    """Opens the import dialog for chosen or dropped paths and runs the import it asks for."""

    def __init__(self, context: WindowContext, parent: QWidget, tree_model: RepoTreeModel) -> None:
        self.context = context
        self.parent = parent  # the dialogs' parent window
        self.tree_model = tree_model
        self.dialog: ImportDialog | None = None  # the last one opened
        self.chooser: QFileDialog | None = None  # the last file chooser (tests fill it)

    def choose(self) -> None:
        """File > Import folder…: pick a model folder, then the dialog."""
        folder = QFileDialog.getExistingDirectory(self.parent, "Import a model folder")
        if folder:
            self.open_dialog([Path(folder)])

    def choose_files(self) -> QFileDialog:
        """File > Import… (Ctrl+I): pick checkpoint files (a single .gguf or .pt too) or a
        model folder (select it and press Open), then the dialog."""
        chooser = FileOrFolderDialog(self.parent, "Import checkpoint files or a model folder")
        chooser.setFileMode(QFileDialog.FileMode.ExistingFiles)
        chooser.setOption(QFileDialog.Option.DontUseNativeDialog, True)  # folders too
        chooser.setNameFilters([
            "Checkpoints (*.safetensors *.pt *.pth *.bin *.ckpt *.npy *.npz *.gguf *.h5 "
            "*.keras *.onnx *.json)", "All files (*)",
        ])  # fmt: skip
        chooser.filesSelected.connect(lambda files: self.open_dialog([Path(f) for f in files]))
        self.chooser = chooser
        chooser.open()
        return chooser

    def existing_models(self) -> list[str]:
        """Model names of the repository the tabs show (the import dialog offers them)."""
        return self.tree_model.models_of(str(self.context.ws.repo.root))

    def open_dialog(self, paths: list[Path]) -> ImportDialog:
        """The import dialog for ``paths``; accepting it starts the import."""
        default = str(self.context.ws.repo.policies.default)
        dialog = ImportDialog(paths, self.existing_models(), self.parent, default_policy=default)
        self.dialog = dialog
        dialog.accepted.connect(lambda: self.start(dialog))
        dialog.open()
        ws = self.context.ws

        def read(_ctx: JobContext) -> tuple[int, int, list[str], dict[str, str]]:
            chunks = ws.repo.chunks
            chunks.refresh()
            names = [d.name for d in ws.repo.devices.devices
                     if d.placeable and chunks.available(d)]  # fmt: skip
            own = {m: str(p) for m, p in ws.repo.policies.models.items()}
            return (*source_size(paths), names, own)

        self.context.runner.submit("Read the import's size", read,
                                   lambda r: dialog.set_source(*r))  # fmt: skip
        return dialog

    def follow_policy(self) -> None:
        """An open dialog shows the repository's current default policy (it may have changed)."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.set_default_policy(str(self.context.ws.repo.policies.default))

    def start(self, dialog: ImportDialog) -> JobRecord:
        """Run the import ``dialog`` describes as a writing job."""
        ws, paths, context = self.context.ws, dialog.paths, self.context
        model, message = dialog.model.currentText().strip(), dialog.message.text()
        labels, codec = dialog.label_list(), CodecSettings(dialog.codec.currentText())
        policy = dialog.chosen_policy()

        def run(ctx: JobContext) -> Changes:
            done = []
            if policy is not None and str(ws.repo.policy_for(model)) != policy:
                done.append(set_policy(ws, policy, model, ctx=ctx, lock_timeout=GUI_LOCK_WAIT,
                                       new_model=True).changes)  # fmt: skip
            imported = import_paths(ws, paths, model, message=message, labels=labels,
                                    codec=codec, ctx=ctx, lock_timeout=GUI_LOCK_WAIT)  # fmt: skip
            return merged([*done, imported.changes])

        return self.context.runner.submit(
            f"Import {model}",
            run,
            writes=ws.repo.root,
            on_done=lambda changes: context.apply_changes(ws, changes),
        )
