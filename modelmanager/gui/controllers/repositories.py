"""The repositories the window lists: the default one and others opened, read and watched."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QStandardItem
from PySide6.QtWidgets import QFileDialog, QWidget

from modelmanager import paths
from modelmanager.core.catalog import Catalog, ModelRow, catalog_path
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.repository import Repository
from modelmanager.core.storage import LocalBlobStore
from modelmanager.gui.changes import RepositoryWatch
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import JobRecord
from modelmanager.gui.models import RepoTreeModel, repository_rows
from modelmanager.services import (
    Changes,
    Workspace,
    _default_repository,
    history,
    open_workspace,
)

#: A Changes naming more models than this re-reads the repository's whole tree instead.
MAX_MODELS_UPDATED = 200


def open_unsynced(path: Path | None) -> Workspace:
    """The repository at ``path`` (the default one without) with its catalog as it is, not
    brought in line: the window appears at once with what the catalog has, and catches up in
    a job (:meth:`Repositories.catch_up`); a lost catalog is rebuilt there, not before."""
    if path is None:
        repo = _default_repository(paths.default_repo_path(), LocalBlobStore)
    else:
        repo = Repository.open(path)
    return Workspace(repo, Catalog(catalog_path(paths.cache_dir(), repo), repo))


#: Every model's labels (label -> version), by model name.
Labels = dict[str, dict[str, int]]


def _labels(models: list[ModelRow]) -> Labels:
    return {m.name: m.labels for m in models}


def _settings_list(name: str) -> list[str]:
    value = QSettings("ModelManager", "ModelManager").value(name) or []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


class Repositories:
    """Opens, reads into the tree, watches and closes the listed repositories."""

    def __init__(
        self,
        context: WindowContext,
        parent: QWidget,
        tree_model: RepoTreeModel,
        *,
        listed: Callable[[str, bool], None],
        keeping: Callable[[], AbstractContextManager[None]],
        remember: bool,
    ) -> None:
        self.context = context
        self.parent = parent  # the folder chooser's window
        self.tree_model = tree_model
        #: Called after a repository's models reached the tree, with its key and whether it
        #: was the first time.
        self.listed = listed
        self.keeping = keeping  # re-reads rows keeping the tree's expansion and selection
        self.remember = remember  # False: the list of opened repositories is not saved
        ws = context.ws
        self.default_key = str(ws.repo.root)
        self.workspaces: dict[str, Workspace] = {self.default_key: ws}
        self.model_counts: dict[str, int] = {}
        self.watches = {self.default_key: self._watch(ws)}
        self.syncing: dict[int, str] = {}  # catalog catch-up jobs -> the repository's name
        #: Repositories whose sizes on disk are measured once their models are listed.
        self.unmeasured: set[str] = set()
        #: Per repository, the labels its last full listing showed, and those its catalog's
        #: catch-up found when it ended before the listing landed (compared then).
        self.listed_labels: dict[str, Labels] = {}
        self.synced_labels: dict[str, Labels] = {}
        context.runner.changed.connect(self.show_progress)

    def _watch(self, ws: Workspace) -> RepositoryWatch:
        return RepositoryWatch(ws, self.context.runner, self.context.apply_changes)

    def reopen_saved(self) -> None:
        """Open (quietly) the repositories listed when the window last closed."""
        for folder in _settings_list("repositories") if self.remember else []:
            if folder != self.default_key:
                self.open(Path(folder), quiet=True)

    def _save(self) -> None:
        if self.remember:
            others = [k for k in self.workspaces if k != self.default_key]
            QSettings("ModelManager", "ModelManager").setValue("repositories", others)

    def read(self, key: str, ws: Workspace) -> None:
        """Read a repository's models (a job) into the tree. Versions are read for the models
        whose rows are open (or searched), so they show again at once; any other model's are
        read when it is opened (one short query): 10,000 models list without 50,000 versions."""
        made = self.tree_model.made_models(key)
        self.tree_model.loaders[key] = functools.partial(history.versions_of, ws)

        def load(_ctx: JobContext) -> tuple[int, QStandardItem, Labels]:
            models = history.list_models(ws)
            versions = history.versions_of(ws, made)
            # The rows are made here, in no model yet: the UI thread only places them.
            rows = repository_rows(key, Path(key).name, models, versions)
            return len(models), rows, _labels(models)

        def show(result: tuple[int, QStandardItem, Labels]) -> None:
            if key not in self.workspaces:
                return  # closed while it was being read
            count, rows, labels = result
            first = key not in self.model_counts
            self.model_counts[key] = count
            self.listed_labels[key] = labels
            with self.keeping():
                self.tree_model.place(key, rows)
            self.listed(key, first)
            synced = self.synced_labels.pop(key, None)
            if synced is not None and synced != labels:
                self.read(key, ws)  # read before the catch-up moved a label: read again
            if key in self.unmeasured:
                self.unmeasured.discard(key)
                self.measure(key, ws)

        self.context.runner.submit("Read the catalog", load, show)

    def apply(self, key: str, ws: Workspace, changes: Changes) -> None:
        """Show what ``changes`` did to repository ``key``: the rows of the models it names
        are read again (in a job) and updated in place, the others left alone; many models
        at once (another process's writes it could not tell apart) re-read the whole tree."""
        if key not in self.workspaces:
            return
        names = set(changes.models) | {ref.partition("@")[0] for ref in changes.versions}
        if not names:
            return
        if key not in self.model_counts or len(names) > MAX_MODELS_UPDATED:
            self.read(key, ws)
        else:
            self.read_models(key, ws, names)

    def read_models(self, key: str, ws: Workspace, names: set[str]) -> None:
        """Read the models ``names`` of repository ``key`` again (a job) and update their rows
        alone: a label moved on one model of 10,000 costs one model's rows, not the tree's."""

        def load(_ctx: JobContext) -> history.ModelsRead:
            return history.read_models(ws, names)

        def show(read: history.ModelsRead) -> None:
            if key not in self.workspaces:
                return
            first = key not in self.model_counts
            self.model_counts[key] = self.tree_model.update_models(key, read.models,
                                                                   read.versions)  # fmt: skip
            self.listed(key, first)

        self.context.runner.submit("Read the catalog", load, show)

    def catch_up(self, key: str, ws: Workspace) -> JobRecord:
        """Bring the catalog in line with the repository (a job: the whole catalog is read
        again when it was lost), its progress on the status line; the tree, which showed what
        the catalog had, is read again if anything was added or removed, or a label differs
        from what the listing showed (compared with the listing, not a second read of every
        model before the sync)."""

        def sync(ctx: JobContext) -> tuple[bool, Labels]:
            def progress(done: int, total: int) -> None:
                ctx.report(done, total, "manifests")
                ctx.check()  # closing the window need not wait for a long rebuild

            result = ws.catalog.sync(progress)
            return bool(result.added or result.removed), _labels(ws.catalog.models())

        def done(answer: tuple[bool, Labels]) -> None:
            changed, labels = answer
            self.context.notify("", 1)
            if key not in self.workspaces:
                return
            shown = self.listed_labels.get(key)
            if changed or (shown is not None and shown != labels):
                self.read(key, ws)  # versions came or went, or a label moved meanwhile
            elif shown is None:  # not listed yet: compared when the listing lands
                self.synced_labels[key] = labels
            self.measure_when_listed(key, ws)

        job = self.context.runner.submit(f"Read the catalog of {Path(key).name}", sync, done,
                                         unit="manifest")  # fmt: skip
        self.syncing[job.id] = Path(key).name
        return job

    def measure_when_listed(self, key: str, ws: Workspace) -> None:
        """Measure sizes on disk now if the repository's models are listed, else once they
        are (knowing how many there are lets the measurement be skipped when every model's
        figure is kept)."""
        if key in self.model_counts:
            self.measure(key, ws)
        else:
            self.unmeasured.add(key)

    def measure(self, key: str, ws: Workspace, *, again: bool = False) -> JobRecord:
        """Measure what each model takes on disk, every copy (a job listing every piece once:
        :meth:`Catalog.measure_stored`) unless the catalog keeps a figure for every model
        listed (it forgets a model's when its versions or pieces change) or ``again``; the
        tree is read again when a figure moved, its On disk column showing "…" until then."""
        listed = self.model_counts.get(key)

        def run(_ctx: JobContext) -> bool:
            before = ws.catalog.stored_bytes()
            if not again and listed is not None and len(before) >= listed:
                return False  # every model's figure is kept: nothing to list
            ws.catalog.measure_stored()
            return ws.catalog.stored_bytes() != before

        def done(changed: bool) -> None:
            if changed and key in self.workspaces:
                self.read(key, ws)

        return self.context.runner.submit(f"Read sizes on disk of {Path(key).name}", run,
                                          done)  # fmt: skip

    def show_progress(self, job_id: object) -> None:
        """A catalog catching up tells how far it read (on the status line)."""
        name = self.syncing.get(job_id)  # type: ignore[call-overload]
        job = self.context.runner.jobs.get(job_id)  # type: ignore[call-overload]
        if name is None or job is None:
            return
        if not job.active:
            del self.syncing[job.id]
        elif job.total:
            self.context.notify(f"Reading the catalog of {name}: {job.done:,} of "
                                f"{job.total:,} manifests", 0)  # fmt: skip

    def read_all(self) -> None:
        """Check every watch for writes by others, then re-read every repository."""
        for watch in self.watches.values():
            watch.check()
        for key, ws in self.workspaces.items():
            self.read(key, ws)
            if key in self.model_counts:  # listed already: its sizes are measured again too
                self.measure(key, ws, again=True)

    def choose(self) -> None:
        """File > Open repository: pick a folder, then open it."""
        folder = QFileDialog.getExistingDirectory(self.parent, "Open a ModelManager repository")
        if folder:
            self.open(Path(folder))

    def open(self, folder: Path, *, quiet: bool = False) -> JobRecord | None:
        """Open another local repository (a job: opening syncs its catalog) and list it."""
        key = str(folder.resolve())
        if key in self.workspaces:
            return None
        title = f"Open repository {folder}" if not quiet else f"Read repository {folder}"

        return self.context.runner.submit(title, lambda _ctx: open_workspace(folder), self.adopt)

    def adopt(self, ws: Workspace) -> None:
        """List (and watch) a repository opened elsewhere, e.g. just recovered; it replaces
        one listed at the same folder (whose folder was lost). Its key is its root."""
        key = str(ws.repo.root)
        old = self.workspaces.get(key)
        if old is not None and old is not ws:
            self.watches.pop(key).stop()
            self.context.runner.submit(f"Close repository {key}", lambda _ctx: old.close())
        self.workspaces[key] = ws
        if key not in self.watches:
            self.watches[key] = self._watch(ws)
        self._save()
        self.read(key, ws)
        self.measure_when_listed(key, ws)

    def close(self, key: str, activate: Callable[[str], None]) -> None:
        """Stop listing a repository opened besides the default one (nothing is deleted);
        ``activate`` shows the default one first when ``key`` is the one shown."""
        if key == self.default_key or key not in self.workspaces:
            return
        if str(self.context.ws.repo.root) == key:
            activate(self.default_key)
        ws = self.workspaces.pop(key)
        self.watches.pop(key).stop()
        self.model_counts.pop(key, None)
        self.unmeasured.discard(key)
        self.listed_labels.pop(key, None)
        self.synced_labels.pop(key, None)
        self.tree_model.remove_repository(key)
        self._save()
        self.context.runner.submit(f"Close repository {key}", lambda _ctx: ws.close())
