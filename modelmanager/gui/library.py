"""The library view over the repository tree: sorting, the catalog's search, and a tree that
keeps its expansion, selection and scroll position when its rows are read again.

Sorting is Qt's own over the role :func:`sort_role` names (no Python per comparison: 10,000
models sort in milliseconds). The top rows (repositories, the stores' and remotes' places)
keep their place: before each sort they are given their own row number as that role's value
(negated for a descending sort).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtWidgets import QHeaderView, QTreeView

from modelmanager.core.catalog.filters import parse_query
from modelmanager.core.jobs import JobContext
from modelmanager.errors import UserError
from modelmanager.gui.jobs_bridge import JobRunner
from modelmanager.gui.models import (
    REF_ROLE,
    REMOTE_ROLE,
    REPO_ROLE,
    STORE_ROLE,
    TEXTS_ROLE,
    Made,
    RepoTreeModel,
    sort_role,
    version_items,
)
from modelmanager.services import Workspace, history

Index = QModelIndex | QPersistentModelIndex
#: Some models' versions, newest first (as read, or their rows made in a job), by model name.
Found = Mapping[str, Made]
#: What identifies a tree row across a re-read (its items are new objects each time).
RowKey = tuple[Any, ...]
#: Columns whose figures read right-aligned (versions, on disk, size, parameters).
NUMBERS = (1, 2, 3, 4)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
#: Wait this long after the last keystroke before searching (one search per word typed).
SEARCH_DELAY_MS = 200


def row_key(index: Index) -> RowKey:
    """The identity of the row at ``index``: repository and reference, remote or store item,
    else its text (the fixed places)."""
    first = index.sibling(index.row(), 0)
    for role in (STORE_ROLE, REMOTE_ROLE):
        value = first.data(role)
        if value:
            return (role, *value)
    repo, ref = first.data(REPO_ROLE), first.data(REF_ROLE)
    if repo:
        return ("repo", repo, ref)
    return ("text", first.data())


class LibraryProxy(QSortFilterProxyModel):
    """Sorts by each cell's raw value; while a search is on, shows the versions the catalog's
    search found (and, with no filter, every version of a model whose name matches)."""

    def __init__(self) -> None:
        super().__init__()
        self.column = -1  # the column shown sorted (Qt's sort column is always the first)
        self.setRecursiveFilteringEnabled(True)
        self.setAutoAcceptChildRows(True)  # a model found by name shows all its versions
        self.text = ""
        self.words: list[str] = []
        #: Repository key -> the references of the versions the search found there.
        self.hits: dict[str, frozenset[str]] = {}
        #: Filters are on: only the versions found show (no model by its name alone).
        self.filtered = False

    def search(
        self, text: str, hits: dict[str, frozenset[str]], words: str | None = None,
        filtered: bool = False,
    ) -> None:  # fmt: skip
        """Show only what ``text`` finds (``hits``: the catalog's answer; ``words``: its free
        text when it holds filters, which then hide every row they did not find); "" shows
        all."""
        begin = getattr(self, "beginFilterChange", None)  # Qt 6.9+; 6.8 has only invalidate
        if begin is not None:
            begin()
        self.text, self.hits, self.filtered = text, hits, filtered
        self.words = [w.lower() for w in re.findall(r"\w+", text if words is None else words)]
        if begin is not None:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The first column's own data; the others' from the texts on the row's first item."""
        column = index.column()
        if column == 0 or not index.isValid():
            return super().data(index, role)
        if role == Qt.ItemDataRole.DisplayRole:
            texts = super().data(index.sibling(index.row(), 0), TEXTS_ROLE)
            return texts[column - 1] if texts and len(texts) >= column else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in NUMBERS:
            return _RIGHT
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort every level by ``column``'s values, top rows where they are."""
        self.column = column
        if column < 0:
            super().sort(-1, order)
            return
        role = sort_role(column, order)
        self._place_top_rows(role, order)
        self.setSortRole(role)
        super().sort(0, order)

    def _place_top_rows(self, role: int, order: Qt.SortOrder) -> None:
        source = self.sourceModel()
        if source is None:
            return
        sign = -1 if order == Qt.SortOrder.DescendingOrder else 1
        for row in range(source.rowCount()):
            index = source.index(row, 0)
            if source.data(index, role) != sign * row:
                source.setData(index, sign * row, role)

    def keep_places(self) -> None:
        """Put the top rows back in their order after rows came or went (a sorted proxy
        places an inserted row after its equals)."""
        if self.column >= 0:
            self._place_top_rows(self.sortRole(), self.sortOrder())

    def fetch_models(
        self, key: str | None, names: Iterable[str], versions: Found | None = None
    ) -> None:
        """Make the version rows of these models (of repository ``key``; None: any) in the
        tree under this proxy, which makes them only when asked (from ``versions`` if given)."""
        source = self.sourceModel()
        if isinstance(source, RepoTreeModel):
            source.fetch_models(key, names, versions)

    def match(
        self, start: Index, role: int, value: Any, hits: int = 1,
        flags: Qt.MatchFlag = Qt.MatchFlag.MatchStartsWith | Qt.MatchFlag.MatchWrap,
    ) -> list[QModelIndex]:  # fmt: skip
        """Qt's match, which also finds versions whose rows are not made yet: a recursive
        search by reference makes its model's versions first (any other recursive search
        makes every model's)."""
        if flags & Qt.MatchFlag.MatchRecursive:
            source = self.sourceModel()
            if isinstance(source, RepoTreeModel):
                if role == REF_ROLE and isinstance(value, str) and "@" in value:
                    source.fetch_models(None, [value.partition("@")[0]])
                elif role != REF_ROLE:
                    for key in source.listed_keys():
                        source.fetch_models(key, list(source.model_items(key)))
        return super().match(start, role, value, hits, flags)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if not self.text:
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        repo, ref = index.data(REPO_ROLE), index.data(REF_ROLE)
        if self.filtered and (not repo or not ref or "@" not in ref):
            return False  # facts are the catalog's: only its versions (and their models) show
        if not repo:  # remotes' and stores' items: their text contains the words
            shown = str(index.data() or "").lower()
            return bool(self.words) and all(w in shown for w in self.words)
        if not ref:
            return False  # a repository: shown when something in it is
        if "@" in ref:
            return ref in self.hits.get(repo, frozenset())
        name = ref.lower()
        return bool(self.words) and all(w in name for w in self.words)


def library_view(proxy: LibraryProxy) -> QTreeView:
    """The tree over ``proxy``: sortable by every column (names first, a to z), each column
    wide enough for its figures."""
    view = QTreeView()
    view.setModel(proxy)
    view.setUniformRowHeights(True)  # thousands of rows scroll without measuring each
    view.setSortingEnabled(True)
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    header = view.header()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    for column, width in enumerate((210, 72, 72, 72, 72, 130, 100, 60, 110)):
        header.resizeSection(column, width)
    return view


def _children(view: QTreeView, parent: QModelIndex) -> Iterator[QModelIndex]:
    model = view.model()
    for row in range(model.rowCount(parent)):
        yield model.index(row, 0, parent)


def expanded_keys(view: QTreeView, parent: QModelIndex | None = None) -> set[RowKey]:
    """The rows expanded in ``view`` (only under expanded rows: a collapsed row's children are
    never visited, so this costs what is open, not what is listed)."""
    found: set[RowKey] = set()
    for index in _children(view, parent or QModelIndex()):
        if view.isExpanded(index):
            found.add(row_key(index))
            found |= expanded_keys(view, index)
    return found


def _depth(key: RowKey) -> int:
    """0 for a repository's row, 1 for a model's, 2 for a version's (parents come first)."""
    ref = key[2] if key[0] == "repo" else None
    return 0 if not ref else 2 if "@" in ref else 1


def repository_row(view: QTreeView, key: RowKey) -> QModelIndex | None:
    """The index of a repository's, model's or version's row found directly (the model's row by
    its name, then its few versions, made if need be), not by visiting 10,000 rows; None when
    ``key`` names no such row or the view is not over the library's tree (invalid: not there)."""
    model = view.model()
    if key[0] != "repo" or not isinstance(model, LibraryProxy):
        return None
    source = model.sourceModel()
    if not isinstance(source, RepoTreeModel):
        return None
    _kind, repo, ref = key
    if not ref:
        row = source.repo_row(repo)
        return model.mapFromSource(source.index(row, 0)) if row is not None else QModelIndex()
    name, at, _seq = ref.partition("@")
    item = source.model_items(repo).get(name)
    if item is None:
        return QModelIndex()
    if at:
        source.fetch_models(repo, [name])  # its version rows, if not made yet
        found = (item.child(r, 0) for r in range(item.rowCount()))
        item = next((c for c in found if c.data(REF_ROLE) == ref), None)
        if item is None:
            return QModelIndex()
    return model.mapFromSource(item.index())


def expand_keys(view: QTreeView, keys: set[RowKey], parent: QModelIndex | None = None) -> None:
    """Expand the rows of ``view`` whose keys are in ``keys`` (and collapse no other): rows of
    repositories found directly, parents first; the others (stores', remotes') by a walk that
    goes only into rows it expands."""
    if not keys:
        return
    model = view.model()
    rest = set()
    for key in sorted(keys, key=_depth) if parent is None else ():
        index = repository_row(view, key)
        if index is None:
            rest.add(key)
        elif index.isValid():
            if model.canFetchMore(index):  # a hidden view makes them only when laid out
                model.fetchMore(index)
            view.expand(index)
    if parent is None:
        keys = rest
    for index in _children(view, parent or QModelIndex()) if keys else ():
        if row_key(index) in keys:
            if model.canFetchMore(index):
                model.fetchMore(index)
            view.expand(index)
            expand_keys(view, keys, index)


def find_row(view: QTreeView, key: RowKey) -> QModelIndex:
    """The index of the row ``key`` names in ``view`` (invalid if it is not there)."""
    direct = repository_row(view, key)
    if direct is not None:
        return direct
    model = view.model()
    if key[0] == "repo" and key[2]:
        matches = model.match(model.index(0, 0), REF_ROLE, key[2], -1,
                              Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly)  # fmt: skip
        for index in matches:
            if index.data(REPO_ROLE) == key[1]:
                return QModelIndex(index)
        return QModelIndex()
    tops = list(_children(view, QModelIndex()))
    for index in tops:  # a top row
        if row_key(index) == key:
            return index
    for index in tops:  # a remote or store item (a repository's rows are found above)
        if index.data(REPO_ROLE) and key[0] != "repo":
            continue
        for child in _children(view, index):
            if row_key(child) == key:
                return child
    return QModelIndex()


class TreeState:
    """What a person arranged in the tree: expanded rows, the current row, the scroll position;
    taken before its rows are read again and put back after."""

    def __init__(self, view: QTreeView) -> None:
        self.view = view
        self.expanded = expanded_keys(view)
        current = view.currentIndex()
        self.current: RowKey | None = row_key(current) if current.isValid() else None
        self.column = current.column() if current.isValid() else 0
        self.scroll = view.verticalScrollBar().value()

    def restore(self, select: Callable[[QModelIndex], None] | None = None) -> None:
        """Expand, select and scroll as before; ``select`` makes the found row current (the
        window's way, which knows not to read the version again)."""
        expand_keys(self.view, self.expanded)
        if self.current is not None:
            index = find_row(self.view, self.current)
            if index.isValid() and self.view.currentIndex() != index:
                index = index.siblingAtColumn(self.column)
                (select or self.view.setCurrentIndex)(index)
        self.view.verticalScrollBar().setValue(self.scroll)


class LibrarySearch:
    """The search box's answers: the catalog's search of every listed repository, in a job
    (an FTS query; slow on a network folder), then the hits shown expanded. Clearing the box
    puts back the tree as it was arranged before the search.

    The box is also the filter bar: it takes the command line's filters, written the same way
    (``llama --params 6B..9B --dtype bf16 --size '>4GB'``), read by the same parser and run by
    the same :meth:`Catalog.search`, so a query pasted from a terminal finds the same versions.
    A filter it cannot read is one line in :attr:`problem` (and given to ``report``); the tree
    stays as it was. ``--sort`` is accepted but the tree keeps its own column sort."""

    def __init__(
        self, view: QTreeView, proxy: LibraryProxy, runner: JobRunner,
        workspaces: Callable[[], dict[str, Workspace]],
        report: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self.view, self.proxy, self.runner = view, proxy, runner
        self.workspaces = workspaces
        self.report = report
        self.problem = ""  # the filter the box holds cannot be read: why, in one line
        self.text = ""
        self.before: TreeState | None = None  # the tree as arranged before the search began
        self.asked = 0  # the newest search asked for: older answers are dropped
        self.timer = QTimer()
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.run)

    def typed(self, text: str) -> None:
        """The box changed: search once typing pauses (clearing shows all at once)."""
        self.text = text.strip()
        if not self.text:
            self.timer.stop()
            self.asked += 1
            self._problem("")
            self.clear()
            return
        self.timer.start(SEARCH_DELAY_MS)

    def clear(self) -> None:
        if not self.proxy.text:
            return
        self.proxy.search("", {})
        if self.before is not None:
            self.view.collapseAll()
            self.before.restore()
            self.before = None

    def run(self) -> None:
        """Ask every listed repository's catalog (again, e.g. after a refresh)."""
        if not self.text:
            return
        line, spaces = self.text, dict(self.workspaces())
        self.asked += 1
        asked = self.asked
        try:
            text, filters = parse_query(line)
        except UserError as e:
            self._problem(str(e))
            return
        self._problem("")

        def search(_ctx: JobContext) -> tuple[dict[str, frozenset[str]], dict[str, Found]]:
            hits: dict[str, frozenset[str]] = {}
            versions: dict[str, Found] = {}
            for key, ws in spaces.items():
                rows = ws.catalog.search(text, filters)
                hits[key] = frozenset(f"{v.model}@{v.seq}" for v in rows)
                # The rows of the models found's versions, made here: a search finding 10,000
                # models makes 50,000 rows (seconds), which the UI thread only appends.
                found = history.versions_of(ws, (v.model for v in rows))
                versions[key] = {name: version_items(key, name, vs) for name, vs in found.items()}
            return hits, versions

        def show(answer: tuple[dict[str, frozenset[str]], dict[str, Found]]) -> None:
            self.show(asked, answer[0], text, filters.active, answer[1])

        self.runner.submit(f"Read search {line}", search, show)

    def _problem(self, line: str) -> None:
        if line != self.problem:
            self.problem = line
            if self.report is not None:
                self.report(line)

    def show(
        self, asked: int, hits: dict[str, frozenset[str]], words: str | None = None,
        filtered: bool = False, versions: dict[str, Found] | None = None,
    ) -> None:  # fmt: skip
        """Show the answer to search number ``asked`` (unless a newer one was asked since);
        ``versions``: per repository, the versions of the models found (read with them)."""
        if asked != self.asked or not self.text:
            return
        if self.before is None:
            self.before = TreeState(self.view)
        for key, refs in hits.items():  # the versions found must have rows to be shown
            names = {ref.rpartition("@")[0] for ref in refs}
            self.proxy.fetch_models(key, names, (versions or {}).get(key))
        self.proxy.search(self.text, hits, words, filtered)
        self.view.expandToDepth(0)
        found = {(key, ref.rpartition("@")[0]) for key, refs in hits.items() for ref in refs}
        model = self.proxy
        for r in range(model.rowCount()):
            top = model.index(r, 0)
            for m in range(model.rowCount(top)):  # only the rows the search shows
                item = model.index(m, 0, top)
                if (item.data(REPO_ROLE), item.data(REF_ROLE)) in found:
                    self.view.expand(item)

    @property
    def active(self) -> bool:
        """A search is shown (refreshes ask again, so new versions are searched too)."""
        return bool(self.text)
