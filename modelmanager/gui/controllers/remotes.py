"""Remotes in the repository tree: add and remove them, list them, push a version to one, pull
one (or everything) from one."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from modelmanager.core.jobs import JobContext
from modelmanager.core.text import shown
from modelmanager.core.units import plural
from modelmanager.errors import ModelManagerError
from modelmanager.gui.changes import merged
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT, JobRecord
from modelmanager.gui.models import REMOTE_ROLE, RepoTreeModel
from modelmanager.gui.remote_dialog import RemoteDialog
from modelmanager.services import remotes


class RemotesController:
    """Reads every configured remote into the tree and runs transfers as jobs."""

    def __init__(self, context: WindowContext, tree_model: RepoTreeModel) -> None:
        self.context = context
        self.tree_model = tree_model
        self.names: list[str] = []  # remotes that take pushes (not HTTP), for the Push menu
        self.listed: list[str] = []  # every configured remote, as the tree shows them
        self.dialog: RemoteDialog | None = None  # the open Add remote dialog
        self.remove_box: QMessageBox | None = None  # the open Remove remote question

    @property
    def parent(self) -> QWidget | None:
        """The window, as the parent of dialogs (a stand-in context may be no widget)."""
        return self.context if isinstance(self.context, QWidget) else None

    @property
    def target_name(self) -> str:
        """The repository pulls go into, as the menu names it."""
        return self.context.ws.repo.root.name

    def refresh(self) -> None:
        """List every configured remote's models and versions (manifests only), in jobs; a
        remote removed meanwhile (here or by the CLI) leaves the tree."""

        def listed(specs: list[remotes.RemoteSpec]) -> None:
            self.names = [r.name for r in specs if not r.read_only]
            self.listed = [r.name for r in specs]
            self._drop_rows(keep=set(self.listed))
            for spec in specs:
                self._read(spec)

        self.context.runner.submit("Read remotes", lambda _ctx: remotes.list_remotes(), listed)

    def _read(self, spec: remotes.RemoteSpec) -> None:
        def read(_ctx: JobContext) -> tuple[list[remotes.RemoteVersion], str]:
            try:
                return remotes.list_versions(remotes.open_remote(spec)), ""
            except ModelManagerError as e:
                return [], str(e)  # shown on the remote's line; the rest of the tree stays

        def show(result: tuple[list[remotes.RemoteVersion], str]) -> None:
            self.tree_model.populate_remote(spec.name, spec.url, *result)

        self.context.runner.submit(f"Read remote {spec.name}", read, show)

    def _drop_rows(self, keep: set[str]) -> None:
        place = self.tree_model.item(self.tree_model.rowCount() - 1, 0)
        for r in reversed(range(place.rowCount())):
            item = place.child(r, 0).data(REMOTE_ROLE)
            if item and item[0] not in keep:
                place.removeRow(r)

    def ask_add(self) -> RemoteDialog:
        """Open the Add remote dialog; a remote it adds is listed in the tree at once."""
        dialog = RemoteDialog(self.add, self.parent)
        dialog.accepted.connect(lambda: self._added(dialog))
        dialog.open()
        self.dialog = dialog
        return dialog

    def add(
        self, name: str, url: str, *, endpoint: str | None = None, profile: str | None = None,
        access_key: str | None = None, secret_key: str | None = None,
    ) -> remotes.RemoteSpec:  # fmt: skip
        """Remember a remote (keys to the OS keyring); raises to keep the dialog open."""
        return remotes.add_remote(name, url, endpoint=endpoint, profile=profile,
                                  access_key=access_key, secret_key=secret_key)  # fmt: skip

    def _added(self, dialog: RemoteDialog) -> None:
        spec = dialog.added
        if spec is None:
            return
        self.refresh()  # first: the Jobs tab rewrites the status line as a job is queued
        keys = "; keys kept in the OS keyring" if dialog.secret_used else ""
        self.context.notify(shown(f"Added remote {spec.name} at {spec.url}{keys}"))

    def ask_remove(self, name: str) -> QMessageBox:
        """Ask before forgetting a remote (what happens, and what does not, in one line)."""
        box = QMessageBox(
            QMessageBox.Icon.Question, "Remove remote",
            shown(f"Forget remote {name}? Nothing on it is deleted; its keys leave the "
                  "keyring. It can be added again."),
            QMessageBox.StandardButton.Cancel, self.parent,
        )  # fmt: skip
        go = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        go.clicked.connect(lambda: self.remove(name))
        box.open()
        self.remove_box = box
        return box

    def remove(self, name: str) -> None:
        """Forget a remote and its keys; its row leaves the tree."""
        try:
            spec = remotes.remove_remote(name)
        except ModelManagerError as e:
            self.context.notify(shown(str(e)))
            return
        self.names = [n for n in self.names if n != name]
        self.listed = [n for n in self.listed if n != name]
        self._drop_rows(keep=set(self.listed))
        self.context.notify(shown(f"Forgot remote {spec.name} ({spec.url}); nothing on it "
                                  "was touched"))  # fmt: skip

    def pull_all(self, remote_name: str) -> JobRecord:
        """Every version and label a remote holds, into the repository the tabs show."""
        ws, context = self.context.ws, self.context

        def run(ctx: JobContext) -> list[remotes.TransferResult]:
            return remotes.pull_all(ws, remotes.open_remote(remote_name), ctx=ctx,
                                    lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(results: list[remotes.TransferResult]) -> None:
            new = sum(r.manifest_written for r in results)
            context.notify(shown(f"Pulled everything from {remote_name}: "
                                 f"{plural(new, 'new version')}, "
                                 f"{len(results) - new} already here"), 0)  # fmt: skip
            context.apply_changes(ws, merged(r.changes for r in results))

        return context.runner.submit(f"Pull everything from {remote_name}", run, done,
                                     writes=ws.repo.root)  # fmt: skip

    def push(self, ref: str, remote_name: str) -> JobRecord:
        """Send a version to a remote as a job (progress in bytes in the Jobs tab). It queues on
        the repository's writer lane: label moves the remote has are brought back."""
        ws, context = self.context.ws, self.context

        def run(ctx: JobContext) -> remotes.TransferResult:
            return remotes.push(ws, ref, remotes.open_remote(remote_name), ctx=ctx,
                                lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(r: remotes.TransferResult) -> None:
            where = f" as {r.stored_ref}" if r.stored_ref and r.stored_ref != r.ref else ""
            context.notify(told(
                f"Pushed {r.ref} to {remote_name}{where}: {plural(r.chunks_sent, 'chunk')} "
                f"sent, {r.chunks_skipped} already there", r), 0)  # fmt: skip
            context.apply_changes(ws, r.changes)  # labels brought back change its rows
            self.refresh()

        return context.runner.submit(f"Push {ref} to {remote_name}", run, done,
                                     writes=ws.repo.root)  # fmt: skip

    def pull(self, remote_name: str, ref: str) -> JobRecord:
        """Fetch a version from a remote into the repository the tabs show, as a job."""
        ws, context = self.context.ws, self.context

        def run(ctx: JobContext) -> remotes.TransferResult:
            return remotes.pull(ws, remotes.open_remote(remote_name), ref, ctx=ctx,
                                lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(r: remotes.TransferResult) -> None:
            where = f" as {r.stored_ref}" if r.stored_ref and r.stored_ref != r.ref else ""
            context.notify(told(f"Pulled {r.ref} from {remote_name}{where}", r), 0)
            context.apply_changes(ws, r.changes)

        return self.context.runner.submit(
            f"Pull {ref} from {remote_name}", run, writes=ws.repo.root, on_done=done
        )


def told(head: str, r: remotes.TransferResult) -> str:
    """A transfer's one line for the status bar: what moved, why its number differs, and
    label moves both sides made differently (the newer won)."""
    parts = [head]
    if r.notice:
        parts.append(r.notice)
    parts += [str(c) for c in r.label_conflicts]
    return shown("; ".join(parts))
