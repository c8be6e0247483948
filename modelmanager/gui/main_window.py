"""The main window: repository tree on the left, tabs on the right, jobs on a thread pool.

Every repository read or write runs through the JobRunner; the UI thread only shows results.
The tree's context menu is built by gui/row_menu.py, and what a selected version's tabs show
is read by gui/shown_version.py; the window keeps the layout, menus and wiring.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelmanager import __version__
from modelmanager.core.analysis.structure import structure
from modelmanager.core.jobs import JobContext
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.controllers.health import Health
from modelmanager.gui.controllers.imports import ImportsController
from modelmanager.gui.controllers.maintenance import Cleanup
from modelmanager.gui.controllers.model_actions import ModelActions
from modelmanager.gui.controllers.mount import MountController
from modelmanager.gui.controllers.recovery import Recovery
from modelmanager.gui.controllers.remotes import RemotesController
from modelmanager.gui.controllers.repositories import Repositories
from modelmanager.gui.controllers.versions import VersionActions
from modelmanager.gui.dialogs import LogDialog
from modelmanager.gui.jobs_bridge import JobRunner
from modelmanager.gui.library import LibraryProxy, LibrarySearch, TreeState, library_view
from modelmanager.gui.lineage_graph import select_in_tree
from modelmanager.gui.menus import build_menus
from modelmanager.gui.models import REF_ROLE, REPO_ROLE, STORE_ROLE, RepoTreeModel
from modelmanager.gui.notices import FailureNotice
from modelmanager.gui.row_menu import row_menu
from modelmanager.gui.shown_version import ShownVersion, read_shown
from modelmanager.gui.stores_view import Listing, StoresView
from modelmanager.gui.tabs.devices import DevicesTab
from modelmanager.gui.tabs.history import HistoryTab, LabelMoves, history_page
from modelmanager.gui.tabs.jobs import JobsTab, is_user_job, jobs_page
from modelmanager.gui.tabs.layout import LayoutTab
from modelmanager.gui.tabs.overview import OverviewTab, plain_label
from modelmanager.gui.tabs.performance import PerformanceTab
from modelmanager.gui.tabs.structure import StructureTab
from modelmanager.gui.tabs.tensors import TensorsTab
from modelmanager.services import Changes, Workspace, history
from modelmanager.services.maintenance import stats

#: The window's other start-up reads wait for the tree's first listing at most this long.
START_AFTER = 2.0


class MainWindow(QMainWindow):
    """One open repository, browsed and changed through jobs."""

    def __init__(
        self, ws: Workspace, runner: JobRunner | None = None, *, remember: bool = True
    ) -> None:
        super().__init__()
        self.remember = remember  # False for screenshots and tests: no user settings touched
        #: Ask before closing while user jobs run (tests turn it off for their teardown, where a
        #: modal question would wait for an answer that never comes).
        self.ask_before_close = True
        self.ws = ws  # the repository the tabs show: the one of the selected tree item
        self.runner = runner or JobRunner()
        self.stores_view = StoresView(self, self)
        self.health = Health(self, self)
        self.cleanup = Cleanup(self, self, self.clear_details, self.health.show_report)
        self.versions = VersionActions(self, self, self.shown_ref)
        self.model_actions = ModelActions(self, self, self.shown_model)
        self.version_actions: list[QAction] = []
        self.close_repo_action = QAction("&Close repository", self)  # build_menus wires it
        self.current_ref: str | None = None
        self.setWindowTitle(f"ModelManager — {ws.repo.root}")
        self.setAcceptDrops(True)
        self.tree_model = RepoTreeModel()
        self.remotes = RemotesController(self, self.tree_model)
        self.imports = ImportsController(self, self, self.tree_model)
        self.repositories = Repositories(
            self, self, self.tree_model, listed=self._listed, keeping=self.keeping_tree,
            remember=remember,
        )  # fmt: skip
        self.recovery = Recovery(self, self, self.repositories, self.activate)
        self.mounts = MountController(self, self, self.shown_ref)
        self._build()
        self.resize(1280, 800)
        geometry = QSettings("ModelManager", "ModelManager").value("geometry") if remember else None
        if geometry is not None:
            self.restoreGeometry(geometry)
        # The tree first: on two cores, reading devices (a walk of every piece), benchmark
        # history, remotes and stores at the same time took the GIL from the listing and
        # doubled the time to a full tree at 10,000 models. They start once it is listed
        # (or after START_AFTER seconds, should the listing fail).
        self._started = False
        self.repositories.read_all()
        QTimer.singleShot(int(START_AFTER * 1000), self, self._start_the_rest)
        self.repositories.reopen_saved()

    @property
    def details(self) -> history.VersionDetails | None:
        """The version the tabs show, as read (None: none is shown)."""
        return self.overview_tab.details

    def shown_ref(self) -> str | None:
        """The version the tabs show as ``model@N`` (a model's row shows its newest)."""
        details = self.details
        return details.manifest.ref if details is not None else self.current_ref

    def shown_model(self) -> str | None:
        """The model of the version the tabs show (the Model menu acts on it)."""
        ref = self.shown_ref()
        return ref.split("@")[0] if ref else None

    # -- layout -------------------------------------------------------------------------

    def _build(self) -> None:
        self.proxy = LibraryProxy()
        self.proxy.setSourceModel(self.tree_model)
        self.search = QLineEdit()
        self.search.setPlaceholderText(
            "Search, or filter: --arch llama --params 6B..9B --dtype bf16 --size '>4GB'"
        )
        self.search.setToolTip(
            "Words search names, labels, messages and metadata. Filters, as in "
            "'modelmanager search': --arch, --params, --dtype, --format, --label, --size, "
            "--older, --newer, --license, --base, --sort; or name:value (license:apache-2.0)."
        )
        self.search.setClearButtonEnabled(True)
        self.tree = library_view(self.proxy)
        self.library_search = LibrarySearch(
            self.tree, self.proxy, self.runner, lambda: self.repositories.workspaces,
            report=lambda line: self.statusBar().showMessage(line, 15_000),
        )  # fmt: skip
        self.search.textChanged.connect(self.library_search.typed)
        self._restoring = False  # putting the tree back: the current row is not read again
        self.stores_listed = False  # the first listing opens the stores' place
        self.tree.selectionModel().currentChanged.connect(self._selected)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._tree_menu)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.search)
        lv.addWidget(self.tree)

        self.tabs = QTabWidget()
        self.overview_tab = OverviewTab(self)
        self.tabs.addTab(self.overview_tab, "Overview")
        self.history = HistoryTab(
            self, self.cleanup.ask_remove, lambda ref: select_in_tree(self.tree, ref)
        )
        self.label_moves = LabelMoves()
        self.tabs.addTab(history_page(self.history, self.label_moves), "History")
        self.tensors_tab = TensorsTab()
        self.tabs.addTab(self.tensors_tab, "Tensors")
        self.layout_tab = LayoutTab()
        self.tabs.addTab(self.layout_tab, "Shard layout")
        self.devices_tab = DevicesTab(self)
        self.tabs.addTab(self.devices_tab, "Devices")
        self.jobs_table = JobsTab(self)
        self.tabs.addTab(jobs_page(self.jobs_table), "Jobs")
        self.performance_tab = PerformanceTab(self)
        self.tabs.addTab(self.performance_tab, "Performance")
        self.structure_tab = StructureTab()
        self.tabs.addTab(self.structure_tab, "Structure")

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 3)
        split.setSizes([700, 580])  # the library's columns, and the tabs beside them
        self.empty = plain_label("Drop a checkpoint file or model folder here to import it.\n\n"
                            "(Or use File > Import..., Ctrl+I.)")  # fmt: skip
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("font-size: 18px; color: palette(mid);")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(split)
        self.failure_notice = FailureNotice()
        self.runner.failed.connect(self._job_failed)
        central = QWidget()
        cv = QVBoxLayout(central)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self.failure_notice)
        cv.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self._menus()
        self.status = plain_label()
        self.statusBar().addPermanentWidget(self.status)

    def _menus(self) -> None:
        build_menus(self)
        self.set_version_enabled(False)

    def set_version_enabled(self, enabled: bool) -> None:
        """The Version menu's actions work only while a version is shown."""
        for act in self.version_actions:
            act.setEnabled(enabled)

    # -- data ---------------------------------------------------------------------------

    def refresh(self, ws: Workspace | None = None) -> None:
        """Reload one repository (the one the tabs show) after a change to it, in the background."""
        ws = ws or self.ws
        key = str(ws.repo.root)
        if key in self.repositories.workspaces:
            self.repositories.read(key, ws)
        if ws is self.ws:
            self.devices_tab.refresh()

    def apply_changes(self, ws: Workspace, changes: Changes) -> None:
        """Refresh only what ``changes`` names (a job's, or another process's writes)."""
        key = str(ws.repo.root)
        self.repositories.apply(key, ws, changes)  # only the models it names are read again
        if ws is not self.ws:
            return
        if changes.storage:
            self.devices_tab.refresh()
        self.imports.follow_policy()
        ref = self.current_ref
        if ref is not None and (
            changes.storage or ref in changes.versions
            or ref.split("@")[0] in changes.models
        ):  # fmt: skip
            self._load(ref)  # its labels, policy, layout or very existence may have changed

    def refresh_all(self) -> None:
        """Reload everything shown: every repository, benchmark history, every remote; and
        re-read what another process may have changed (policies, devices)."""
        self.repositories.read_all()
        self.devices_tab.refresh()
        self.performance_tab.refresh()
        self.remotes.refresh()
        self.stores_view.refresh()

    # -- tree menu --------------------------------------------------------------------------

    def _tree_menu(self, pos: Any) -> None:
        menu = self.tree_menu(self.tree.indexAt(pos))
        if not menu.isEmpty():
            menu.popup(self.tree.viewport().mapToGlobal(pos))

    def tree_menu(self, index: QModelIndex) -> QMenu:
        """The context menu of a tree row (empty for none): see :func:`row_menu`."""
        return row_menu(self, index, self)

    def _listed(self, key: str, first: bool) -> None:
        """A repository's models reached the tree: open it the first time, search it again if
        a search is shown, and show what the window shows."""
        if first:
            row = self.tree_model.repo_row(key)
            if row is not None:
                self.tree.expand(self.proxy.mapFromSource(self.tree_model.index(row, 0)))
        if self.library_search.active:
            self.library_search.run()
        self.update_stack()
        self._update_status()
        if key == self.repositories.default_key:
            self._start_the_rest()

    def _start_the_rest(self) -> None:
        """What the window reads besides the tree, once, after the tree's first listing: the
        catalog's catch-up with the repository, devices, benchmark history, remotes, stores."""
        if self._started:
            return
        self._started = True
        self.devices_tab.refresh()
        self.performance_tab.refresh()
        self.remotes.refresh()
        self.stores_view.refresh()
        key = self.repositories.default_key
        ws = self.repositories.workspaces.get(key)
        if ws is not None:
            self.repositories.catch_up(key, ws)

    @contextmanager
    def keeping_tree(self) -> Iterator[None]:
        """Re-read rows without losing what the person arranged: expansion, current row,
        scroll position (any refresh: a job's Changes, F5, another process's write)."""
        state = TreeState(self.tree)
        yield
        self.proxy.keep_places()
        state.restore(self._reselect)

    def _reselect(self, index: QModelIndex) -> None:
        """Make ``index`` current again after a re-read, without reading its version again
        (a refresh that changed it reads it already)."""
        self._restoring = True
        try:
            self.tree.setCurrentIndex(index)
        finally:
            self._restoring = False

    def show_store_listing(self, listing: Listing) -> None:
        """The models other tools keep here go in the tree (expanded when no repository has
        any model yet)."""
        first = not self.stores_listed
        self.stores_listed = True
        with self.keeping_tree():
            self.tree_model.populate_stores(listing)
        if first:
            counts = self.repositories.model_counts.values()
            self.tree.expandToDepth(1 if not any(counts) else 0)
        self.update_stack()

    def show_tensor_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Show a store model's tensors in the Tensors tab and bring it forward."""
        self.tensors_tab.set_rows(rows)
        self.tabs.setCurrentWidget(self.tensors_tab)

    @property
    def open_workspaces(self) -> list[Workspace]:
        """Every repository open in the tree."""
        return list(self.repositories.workspaces.values())

    def update_stack(self) -> None:
        """The tree and tabs once there is anything to show (a repository's models, or the
        models other tools keep here); before that, the drop-a-file invitation."""
        counts = self.repositories.model_counts.values()
        anything = any(counts) or any(m for _s, m in self.stores_view.listing)
        self.stack.setCurrentIndex(1 if anything else 0)

    def _update_status(self) -> None:
        n = self.repositories.model_counts.get(str(self.ws.repo.root), 0)
        self.status.setText(f"{self.ws.repo.root}  ·  {plural(n, 'model')}")
        self.setWindowTitle(f"ModelManager — {self.ws.repo.root}")
        shown_key = str(self.ws.repo.root)
        self.close_repo_action.setEnabled(shown_key != self.repositories.default_key)

    def activate(self, key: str) -> None:
        """Make the repository ``key`` the one the tabs show."""
        if self.repositories.workspaces.get(key, self.ws) is self.ws:
            return  # shown already (a recovered folder replaces the workspace, not the key)
        self.ws = self.repositories.workspaces[key]
        self.overview_tab.details = None
        self.history.shown_model = None  # its rows are the other repository's versions
        self.current_ref = None
        self.set_version_enabled(False)
        self.devices_tab.refresh()
        self.performance_tab.refresh()
        self._update_status()

    # -- other repositories -------------------------------------------------------------

    def close_repository(self, key: str) -> None:
        """Stop listing a repository opened besides the default one (nothing is deleted)."""
        self.repositories.close(key, self.activate)

    def select_first_model(self) -> None:
        """Select the newest version of the first model (used by --screenshot)."""
        root = self.proxy.index(0, 0)
        model = self.proxy.index(0, 0, root)
        if model.isValid():
            self.tree.setCurrentIndex(model)

    def _selected(self, index: Any, _previous: Any = None) -> None:
        index = index.siblingAtColumn(0)  # a click in any column selects the row
        if not index.isValid():
            return
        if self.tree_model.pruning:  # the shown row is gone: Qt moved the current row
            self._drop_current(QPersistentModelIndex(index))
            return
        store_item = index.data(STORE_ROLE)
        if store_item and store_item[1]:
            self.stores_view.show_model(*store_item)
            return
        key = index.data(REPO_ROLE)
        if key:
            self.activate(key)
        ref = index.data(REF_ROLE)
        if ref and not (self._restoring and ref == self.current_ref):
            self._load(ref)

    def _drop_current(self, moved_to: QPersistentModelIndex) -> None:
        """Leave the tree with no current row where Qt moved it to ``moved_to`` from a removed
        row (after the removal: not from inside the model's signal), unless someone chose a
        row meanwhile. The window then shows no version, as the remover asked."""

        def drop() -> None:
            if QPersistentModelIndex(self.tree.currentIndex().siblingAtColumn(0)) == moved_to:
                self.tree.selectionModel().clear()

        QTimer.singleShot(0, self.tree, drop)  # dropped with the tree if it goes first

    def _load(self, ref: str) -> None:
        self.current_ref = ref
        self.set_version_enabled(True)
        ws = self.ws
        self.runner.submit(f"Read {ref}", lambda _ctx: read_shown(ws, ref), self._show_details)

    def clear_details(self) -> None:
        """Show no version (the one shown was removed); History goes on listing its model's
        other versions, read again."""
        self.current_ref = None
        self.set_version_enabled(False)
        self.overview_tab.clear()
        self.tensors_tab.set_rows([])
        self.layout_tab.clear()
        self.structure_tab.clear()
        model, ws = self.history.shown_model, self.ws
        self.history.show_versions(None, [])
        self.label_moves.show_moves(None, [])
        if model is None:
            return

        def read(_ctx: JobContext) -> tuple[list[Any], list[Any]]:
            return ws.catalog.versions(model), ws.repo.label_log(model)

        def show(result: tuple[list[Any], list[Any]]) -> None:
            if self.current_ref is None and self.ws is ws and result[0]:
                self.history.show_versions(model, result[0])
                self.label_moves.show_moves(model, result[1])

        self.runner.submit(f"Read history of {model}", read, show)

    def _show_details(self, shown: ShownVersion | None) -> None:
        if shown is None:
            self.clear_details()
            return
        # The Tensors tab first: Overview starts the relatives' lookup (up to 500 manifests
        # read on a worker), which would hold the GIL while a 100,000-row table fills.
        self.tensors_tab.set_rows(shown.rows)
        self.layout_tab.set_layout(shown.layout)
        details, model = shown.details, shown.details.manifest.model
        self.overview_tab.show_details(details, str(self.ws.repo.policy_for(model)))
        self.history.show_versions(model, shown.versions)
        self.label_moves.show_moves(model, shown.moves)
        self._read_structure(details.manifest)

    def _read_structure(self, manifest: Any) -> None:
        """The Structure tab, in a read of its own after the other tabs are filled: building
        the module tree of a 100,000-tensor version takes about a second, which the Tensors
        tab must not wait for."""
        ref = manifest.ref
        self.structure_tab.clear()

        def show(tree: Any) -> None:
            if self.current_ref is not None and self.shown_ref() == ref:
                self.structure_tab.show_structure(tree)

        self.runner.submit(f"Read structure of {ref}", lambda _ctx: structure(manifest), show)

    # -- import -------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Local files and folders are welcome, always as a Copy: a Move would let some file
        managers delete the source once the drop is accepted."""
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasUrls():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            QTimer.singleShot(0, lambda: self.imports.open_dialog(paths))

    # -- window -------------------------------------------------------------------------

    def _job_failed(self, job_id: int, _message: str) -> None:
        """A user job's failure stays in the banner until dismissed."""
        job = self.runner.jobs.get(job_id)
        if job is not None and is_user_job(job.title):
            self.failure_notice.add(job)

    def notify(self, message: str, timeout_ms: int = 15_000) -> None:
        """Show ``message`` on the status line (the tabs' and controllers' one way to talk)."""
        self.statusBar().showMessage(message, timeout_ms)

    def show_log(self) -> LogDialog:
        """Help > Show log: the log file's end, read-only, with a button to its folder."""
        self.log_dialog = LogDialog(self)
        self.log_dialog.open()
        return self.log_dialog

    def changeEvent(self, event: QEvent) -> None:
        """Coming back to the window checks for writes made meanwhile (a watcher can miss
        some, e.g. on network folders)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            for watch in self.repositories.watches.values():
                watch.soon()

    def about(self) -> None:
        """The About box; the repository's figures are measured as a job, not on this thread."""
        ws = self.ws

        def show(s: Any) -> None:
            QMessageBox.about(
                self, "About ModelManager",
                f"ModelManager {__version__}\n\nVersioned, deduplicated, verified storage for "
                f"model checkpoints.\n\nRepository: {ws.repo.root}\n"
                f"{s.models} models, {s.versions} versions, {human_bytes(s.stored_bytes)} stored",
            )  # fmt: skip

        self.runner.submit("Read repository statistics", lambda _ctx: stats(ws), show)

    def closeEvent(self, event: Any) -> None:
        busy = [j for j in self.runner.working() if is_user_job(j.title)]
        if busy and self.ask_before_close:
            answer = QMessageBox.question(
                self, "Jobs are running",
                f"{plural(len(busy), 'job')} still running. Cancel and quit?",
            )  # fmt: skip
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.mounts.unmount_all()  # never leave a mount behind the window
        for watch in self.repositories.watches.values():
            watch.stop()
        self.runner.cancel_all_and_wait()
        if self.remember:
            QSettings("ModelManager", "ModelManager").setValue("geometry", self.saveGeometry())
        event.accept()
