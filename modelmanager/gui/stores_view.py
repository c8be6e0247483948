"""The window's part for models other tools keep here: list, show in folder, adopt, delete
(previewed), find duplicates (issues 10 and 19)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QInputDialog, QMenu, QMessageBox, QWidget

from modelmanager.core.formats import index_file
from modelmanager.core.jobs import JobContext
from modelmanager.core.stores import Store, StoreModel
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.errors import ModelManagerError
from modelmanager.gui.context import WindowContext
from modelmanager.gui.duplicates_dialog import DuplicatesDialog, total_text
from modelmanager.services import Workspace, store_duplicates, stores

if TYPE_CHECKING:
    from modelmanager.gui.jobs_bridge import JobRecord

Listing = list[tuple[Store, list[StoreModel]]]


class StoresHost(WindowContext, Protocol):
    """What the stores view needs of the window beyond the tabs' context."""

    def show_store_listing(self, listing: Listing) -> None:
        """Put the stores' models in the tree (and leave the drop-a-file invitation)."""
        ...

    def show_tensor_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Show ``rows`` in the Tensors tab and bring it forward."""
        ...

    @property
    def open_workspaces(self) -> list[Workspace]:
        """Every repository open in the tree (compared for duplicates)."""
        ...


class StoresView:
    """Fills the tree's "Models on this workstation" place and runs its actions as jobs."""

    def __init__(self, host: StoresHost, parent: QWidget) -> None:
        self.host = host
        self.parent = parent  # of its questions and message boxes
        self.listing: Listing = []
        self.delete_box: QMessageBox | None = None  # the open deletion preview
        self.duplicates_box: DuplicatesDialog | None = None  # the last duplicates shown
        self.last_duplicates: list[store_duplicates.DuplicateGroup] = []

    def refresh(self) -> JobRecord:
        """List every store found, off the UI thread (a store can be large or slow)."""

        def read(_ctx: JobContext) -> Listing:
            return [(s, s.models()) for s in stores.all_stores()]

        def show(listing: Listing) -> None:
            self.listing = listing
            self.host.show_store_listing(listing)

        return self.host.runner.submit("Read model stores", read, show)

    def find(self, root: str, ref: str) -> tuple[Store, StoreModel] | None:
        for store, models in self.listing:
            if str(store.root) == root:
                for m in models:
                    if m.ref == ref:
                        return store, m
        return None

    def models_of(self, store: Store) -> list[StoreModel] | None:
        """The store's models as last listed (the preview needs no new listing)."""
        return next((models for s, models in self.listing if s == store), None)

    def show_model(self, root: str, ref: str) -> JobRecord | None:
        """Selecting a store's model: its tensors (from the weight files' headers only) in
        the Tensors tab; a file that cannot be read is named in the status bar."""
        found = self.find(root, ref)
        if found is None:
            return None
        _store, model = found

        def read(ctx: JobContext) -> tuple[list[tuple[Any, ...]], list[str]]:
            rows: list[tuple[Any, ...]] = []
            problems = list(model.errors)
            weights = [f for f in model.files if f.weights]
            ctx.unit = "file"
            for n, f in enumerate(weights):
                ctx.check()
                ctx.report(n, len(weights), f.name)
                try:
                    index = index_file(f.path, f.size)
                except (ModelManagerError, OSError) as e:
                    problems.append(f"{f.name}: {e}")
                    continue
                for t in index.tensors:
                    shape = "x".join(map(str, t.shape)) or "scalar"
                    rows.append((t.name, t.dtype, shape, t.numel, t.nbytes, t.nbytes,
                                 "as the store keeps it", f.name))  # fmt: skip
            return rows, problems

        def show(result: tuple[list[tuple[Any, ...]], list[str]]) -> None:
            rows, problems = result
            self.host.show_tensor_rows(rows)
            note = f"; unreadable: {problems[0]}" if problems else ""
            files = plural(sum(f.weights for f in model.files), "weight file")
            self.host.notify(
                shown(f"{model.ref}: {plural(len(rows), 'tensor')} from the headers of {files}"
                      f"{note}"))  # fmt: skip

        return self.host.runner.submit(f"Read {model.ref}", read, show)

    def add_actions(self, menu: QMenu, root: str, ref: str | None) -> None:
        """The tree's context menu on a store (``ref`` None) or one of its models."""
        store = next((s for s, _models in self.listing if str(s.root) == root), None)
        if store is not None and ref is None:
            folder = store.root
            menu.addAction("Show in folder", lambda: self.show_in_folder(folder))
            menu.addAction("Find duplicates…", self.find_duplicates)
            return
        found = self.find(root, ref) if ref else None
        if found is None:
            return
        store, model = found
        target = self.host.ws.repo.root.name
        act = menu.addAction(shown(f"Adopt {model.name} into {target}…"),
                             lambda: self.ask_adopt(store, model, remove=False))  # fmt: skip
        act.setEnabled(not model.errors)
        act = menu.addAction("Adopt, then remove the original…",
                             lambda: self.ask_adopt(store, model, remove=True))  # fmt: skip
        act.setEnabled(not model.errors)
        menu.addAction("Show in folder",
                       lambda: self.show_in_folder(stores.model_folder(store, model)))  # fmt: skip
        menu.addSeparator()
        menu.addAction(shown(f"Delete from {store.title}…"), lambda: self.ask_delete(store, model))

    def show_in_folder(self, folder: Path) -> QUrl:
        """Open ``folder`` in the desktop's file manager; the status line says when none could."""
        url = QUrl.fromLocalFile(str(folder))
        if not QDesktopServices.openUrl(url):
            self.host.notify(shown(f"No file manager could open {folder}"))
        return url

    def ask_delete(self, store: Store, model: StoreModel) -> QMessageBox:
        """Preview what deleting a store's model removes (each path and its bytes, what stays
        because another model uses it); Delete runs it as a job."""
        plan = stores.removal_preview(store, model, self.models_of(store))
        sizes = {f.path.resolve(): f.size for f in model.files}
        shared = plural(len(plan.shared), "file")
        kept = f" {shared} another model uses will stay." if plan.shared else ""
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Delete from the store?",
            shown(f"Delete {short_ref(model)} from {store.title}: "
                  f"{plural(len(plan.paths), 'path')}, "
                  f"{human_bytes(plan.bytes)} freed.{kept} No repository copy is checked first: "
                  "to keep it, use Adopt, then remove the original."),
            QMessageBox.StandardButton.Cancel, self.parent,
        )  # fmt: skip
        box.setTextFormat(Qt.TextFormat.PlainText)  # store and model names come from disk
        box.setDetailedText("\n".join(
            [*(shown(f"{human_bytes(sizes.get(p, 0))}  {p}") for p in plan.paths),
             *(shown(f"kept (another model uses it): {p}") for p in plan.shared),
             *(shown(f"left alone (outside the store): {p}") for p in plan.outside)]))  # fmt: skip
        go = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        go.clicked.connect(lambda: self.delete(store, model))
        box.open()
        self.delete_box = box
        return box

    def delete(self, store: Store, model: StoreModel) -> JobRecord:
        """Delete a store's model as a job (explicitly asked for); the tree shows the store
        as it is after."""
        models = self.models_of(store)

        def done(r: stores.Deletion) -> None:
            self.refresh()  # first: the Jobs tab rewrites the status line as a job is queued
            self.host.notify(shown(f"Deleted {model.ref} from {store.title}: "
                                   f"{plural(len(r.removed), 'path')}, freed "
                                   f"{human_bytes(r.freed)}"), 0)  # fmt: skip

        return self.host.runner.submit(f"Delete {model.ref} from {store.title}",
                                       lambda _ctx: stores.delete_model(store, model, models),
                                       done)  # fmt: skip

    def ask_adopt(self, store: Store, model: StoreModel, *, remove: bool) -> JobRecord | None:
        """Ask for the repository model name (and, to remove, confirm the exact list)."""
        into, ok = QInputDialog.getText(
            self.parent, "Adopt a model",
            shown(f"Import {model.ref} from {store.title} as the next version of:"),
            text=stores.default_name(model),
        )  # fmt: skip
        if not ok or not into.strip():
            return None
        if remove:
            plan = stores.removal_preview(store, model, self.models_of(store))
            box = QMessageBox(
                QMessageBox.Icon.Warning, "Remove the original?",
                shown(f"After the import is read back and matches byte for byte, "
                      f"{plural(len(plan.paths), 'path')} will be deleted from {store.title}, "
                      f"freeing {human_bytes(plan.bytes)}. {store.title} will no longer have "
                      f"{model.ref}."),
                QMessageBox.StandardButton.Cancel, self.parent,
            )  # fmt: skip
            box.setTextFormat(Qt.TextFormat.PlainText)  # store and model names come from disk
            box.setDetailedText("\n".join(
                [*(shown(str(p)) for p in plan.paths),
                 *(shown(f"kept (another model uses it): {p}") for p in plan.shared)]))  # fmt: skip
            go = box.addButton("Adopt and remove", QMessageBox.ButtonRole.DestructiveRole)
            box.exec()
            if box.clickedButton() is not go:
                return None
        return self.adopt(store, model, into.strip(), remove_original=remove)

    def adopt(self, store: Store, model: StoreModel, into: str, *,
              remove_original: bool = False) -> JobRecord:  # fmt: skip
        """Adopt as a job; the tree shows the new version and the store as it is after."""
        ws = self.host.ws

        def run(ctx: JobContext) -> stores.AdoptResult:
            return stores.adopt(ws, store, model, into, remove_original=remove_original, ctx=ctx)

        def done(r: stores.AdoptResult) -> None:
            self.host.apply_changes(ws, r.imported.changes)
            self.refresh()  # first: the Jobs tab rewrites the status line as a job is queued
            freed = f"; freed {human_bytes(r.freed)}" if remove_original else ""
            adopted = shown(f"Adopted {model.ref} as {r.imported.manifest.ref}")
            self.host.notify(
                f"{adopted}: {plural(r.verified, 'file')} identical to the originals{freed}"
            )

        return self.host.runner.submit(f"Adopt {model.ref}", run, done, writes=ws.repo.root)

    def find_duplicates(self) -> JobRecord:
        """Compare every store and the open repositories; show the groups when done."""
        listed = [s for s, _models in self.listing]
        spaces = self.host.open_workspaces

        def run(ctx: JobContext) -> list[store_duplicates.DuplicateGroup]:
            # Not listed yet: find the stores here, off the UI thread (it reads the disk).
            return store_duplicates.find_duplicates(listed or stores.all_stores(), spaces, ctx)

        def show(groups: list[store_duplicates.DuplicateGroup]) -> None:
            self.last_duplicates = groups
            box = DuplicatesDialog(groups, self.parent)
            box.open()
            self.duplicates_box = box
            self.host.notify(total_text(groups))

        return self.host.runner.submit("Find duplicates", run, show)


def short_ref(model: StoreModel) -> str:
    """A store model's reference with its revision cut to 12 characters (HF's are 40)."""
    return f"{model.name}@{model.revision[:12]}" if len(model.revision) > 12 else model.ref


def store_actions(menu: QMenu, view: StoresView, root: str, ref: str | None) -> None:
    """The stores' part of the tree's context menu (what ``StoresView.add_actions`` adds)."""
    view.add_actions(menu, root, ref)
