"""The repository tree's item model over Qt-free data (the tensor table is gui/tensor_table.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QStandardItem, QStandardItemModel

from modelmanager.core.catalog import ModelRow, VersionRow
from modelmanager.core.stores import Store, StoreModel, disk_size
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, human_count, plural
from modelmanager.services.remotes import RemoteVersion

REF_ROLE = Qt.ItemDataRole.UserRole + 1
#: The repository an item belongs to: its root folder as text ("" for the remotes' place).
REPO_ROLE = Qt.ItemDataRole.UserRole + 2
Index = QModelIndex | QPersistentModelIndex
REMOTES = "Remote repositories"
#: On a remote's items: (remote name, reference or None).
REMOTE_ROLE = Qt.ItemDataRole.UserRole + 3
STORES = "Models on this workstation"
#: On a store's items: (store root, model ref or None).
STORE_ROLE = Qt.ItemDataRole.UserRole + 4
#: Top-level rows after the repositories: the stores' place, then the remotes'.
FIXED_ROWS = 2


def _item(
    text: str, repo: str, ref: str | None = None, tip: str | Sequence[str] = ""
) -> QStandardItem:
    """A read-only tree item; its text and tooltip (one line, or a list of lines) escaped."""
    item = QStandardItem(shown(text))
    item.setEditable(False)
    item.setData(repo, REPO_ROLE)
    if ref is not None:
        item.setData(ref, REF_ROLE)
    lines = [tip] if isinstance(tip, str) else tip
    if any(lines):
        item.setToolTip("\n".join(shown(line) for line in lines))
    return item


def _version_text(seq: int, labels: Sequence[str], message: str) -> str:
    """How a version reads in the tree: @3  [prod, rc1]  message."""
    tag = f"  [{', '.join(labels)}]" if labels else ""
    return f"@{seq}{tag}  {message}".rstrip()


#: The library's columns: what a person compares models by (LM Studio's My Models, and more).
#: "On disk" is what a model's chunks take on the devices (every copy); "Size" its newest
#: version's logical size.
TREE_COLUMNS = ("Name", "Versions", "On disk", "Size", "Parameters", "Architecture", "Dtypes",
                "Labels", "Updated")  # fmt: skip
#: Column numbers of the library's figures.
ON_DISK, SIZE = 2, 3
#: On a row's first item: the texts of its other columns (the proxy shows them; one item per
#: row, not one per cell, so 50,000 versions fill the tree in a fraction of a second).
TEXTS_ROLE = Qt.ItemDataRole.UserRole + 5
#: On a model's first item while its versions are not made yet: a :class:`Pending` (holding
#: them, or None when they are to be read). Version rows are made when the model is expanded,
#: searched or selected (:meth:`RepoTreeModel.fetchMore`): 10,000 models list without
#: reading 50,000 versions or making their items.
PENDING_ROLE = Qt.ItemDataRole.UserRole + 6
#: On a row's first item, the value column ``c`` sorts by is at role SORT_BASE + c; the name
#: column has one role per order (NAME_ASC, NAME_DESC), so versions stay newest first.
SORT_BASE = Qt.ItemDataRole.UserRole + 10
NAME_ASC, NAME_DESC = SORT_BASE, SORT_BASE + len(TREE_COLUMNS)
#: Every role a model's row carries, copied when a re-read model updates its row in place.
_ROW_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, REF_ROLE, TEXTS_ROLE,
              *range(SORT_BASE + 1, NAME_DESC), NAME_ASC, NAME_DESC)  # fmt: skip


def sort_role(column: int, order: Qt.SortOrder) -> int:
    """The role that holds what ``column`` sorts by, in ``order``."""
    if column == 0:
        return NAME_DESC if order == Qt.SortOrder.DescendingOrder else NAME_ASC
    return SORT_BASE + column


def dtype_mix(dtypes: Mapping[str, int]) -> str:
    """'BF16' when one dtype holds (nearly) every byte, else the two largest shares:
    'Q4_K 81% · F32 19%' (shares under 0.5 % left out: an int64 position table is no mix)."""
    total = sum(dtypes.values())
    if not total:
        return ""
    top = sorted(((k, v) for k, v in dtypes.items() if v * 200 >= total),
                 key=lambda kv: (-kv[1], kv[0]))  # fmt: skip
    if len(top) == 1:
        return top[0][0]
    return " · ".join(f"{k} {100 * v / total:.0f}%" for k, v in top[:2]) + (
        " …" if len(top) > 2 else ""
    )


def _figures(
    item: QStandardItem, versions: int | None, stored: int | None, size: int, params: int,
    arch: str, dtypes: Mapping[str, int], labels: Sequence[str], updated: str,
) -> None:  # fmt: skip
    """Put the other columns' texts and sort values on a model's (``versions`` counted) or a
    version's (None) first item. ``stored`` None on a model: not measured yet ("…", sorted
    first); versions show none (their chunks are shared)."""
    mix, tags = dtype_mix(dtypes), ", ".join(labels)
    on_disk = "" if versions is None else "…" if stored is None else human_bytes(stored)
    texts = (plural(versions, "version") if versions is not None else "", on_disk,
             human_bytes(size), human_count(params) if params else "", arch, mix, tags,
             updated[:16].replace("T", " "))  # fmt: skip
    item.setData(tuple(shown(t) for t in texts), TEXTS_ROLE)
    # Figures sort as floats: Qt compares an int and a 64-bit int wrongly (3 GiB sorted below
    # 5 MiB), and a float holds every byte count up to 8 PiB exactly.
    values = (float(versions or 0), -1.0 if stored is None else float(stored), float(size),
              float(params), arch.lower(), mix, tags, updated)  # fmt: skip
    for column, value in enumerate(values, start=1):
        item.setData(value, SORT_BASE + column)


def _size(item: QStandardItem, size: int, on_disk: bool) -> QStandardItem:
    """Show ``size`` in the Size column of a store's or a remote's row (and in On disk for a
    store's, whose files are kept as they are)."""
    texts = ("", human_bytes(size) if on_disk else "", human_bytes(size))
    item.setData(texts, TEXTS_ROLE)
    if on_disk:
        item.setData(float(size), SORT_BASE + ON_DISK)
    item.setData(float(size), SORT_BASE + SIZE)  # a float: see _figures
    return item


class Pending:
    """The versions of a model whose rows are not made yet (on its item, PENDING_ROLE); None:
    not read yet (the tree's loader reads them when they are wanted)."""

    __slots__ = ("versions",)

    def __init__(self, versions: Sequence[VersionRow] | None) -> None:
        self.versions = versions


#: Reads some models' versions, newest first (the catalog's, for the repository listed).
Loader = Callable[[Sequence[str]], Mapping[str, Sequence[VersionRow]]]
#: A model's versions: as read, or their rows made already (in a job).
Made = Sequence[VersionRow] | Sequence[QStandardItem]


def version_item(key: str, model: str, v: VersionRow) -> QStandardItem:
    """The row of version ``v`` of ``model`` (in repository ``key``)."""
    child = _item(_version_text(v.seq, v.labels, v.message), key, f"{model}@{v.seq}",
                  f"{v.created[:19].replace('T', ' ')}  {v.message}")  # fmt: skip
    child.setData(-v.seq, NAME_ASC)  # newest first, whichever way names sort
    child.setData(v.seq, NAME_DESC)
    _figures(child, None, None, v.logical_bytes, v.parameters,
             v.facts.architecture, v.dtypes, v.labels, v.created)  # fmt: skip
    return child


def version_items(key: str, model: str, versions: Sequence[VersionRow]) -> list[QStandardItem]:
    """The rows of ``versions`` of ``model``, in no model yet: a job makes them (50,000 of them
    take seconds), the UI thread only appends them."""
    return [version_item(key, model, v) for v in versions]


def model_item(key: str, m: ModelRow, versions: Sequence[VersionRow] | None) -> QStandardItem:
    """The row of model ``m`` (in repository ``key``) with its versions' rows when they are
    given (read with it: a model open, or found by a search), else (None) a Pending: they are
    read and made when the model is opened."""
    item = _item(m.name, key, m.name, f"{plural(m.versions, 'version')}, newest @{m.latest}")
    name = m.name.lower()
    item.setData(name, NAME_ASC)
    item.setData(name, NAME_DESC)
    _figures(item, m.versions, m.stored_bytes, m.logical_bytes, m.parameters, m.architecture,
             m.dtypes, sorted(m.labels), m.updated)  # fmt: skip
    item.setColumnCount(len(TREE_COLUMNS))  # its versions' rows, when made, have every column
    if versions is None and m.versions:
        item.setData(Pending(None), PENDING_ROLE)
    elif versions:
        item.appendRows(version_items(key, m.name, versions))
    return item


def repository_rows(key: str, repo_name: str, models: list[ModelRow],
                    versions: Mapping[str, Sequence[VersionRow]]) -> QStandardItem:  # fmt: skip
    """A repository's row with its models under it, in no model yet: a job can make it, the UI
    thread only places it. Versions' rows are made when a model is opened (fetchMore), from
    ``versions`` when they hold the model's, else read then by the tree's loader."""
    root = _item(repo_name, key, tip=key)
    root.setData((plural(len(models), "model"),), TEXTS_ROLE)
    root.appendRows([model_item(key, m, versions.get(m.name)) for m in models])
    root.setColumnCount(len(TREE_COLUMNS))
    return root


class RepoTreeModel(QStandardItemModel):
    """Repositories -> models -> versions (with their labels), then a place for remotes.

    One item per row: it carries its reference (REF_ROLE), its repository's key (REPO_ROLE),
    the other columns' texts (TEXTS_ROLE) and sort values (:func:`sort_role`). Rows without
    sort values (repositories, the stores' and remotes' places) keep their place when sorted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setHorizontalHeaderLabels(list(TREE_COLUMNS))
        stores = _item(STORES, "", tip="Models the Hugging Face cache, Ollama, LM Studio and "
                       "folders you added keep (read-only)")  # fmt: skip
        self.appendRow(stores)
        remotes = _item(REMOTES, "", tip="Repositories on S3-compatible storage or HTTP "
                        "will be listed here")  # fmt: skip
        self.appendRow(remotes)
        #: Per repository: its models' rows by name (see :meth:`model_items`).
        self._named: dict[str, dict[str, QStandardItem]] = {}
        self._busy = 0  # rows are being inserted or removed (see _changing)
        self._pruning = 0  # rows of gone models or versions are being removed (see pruning)
        #: Per repository: what reads the versions of models whose rows are wanted.
        self.loaders: dict[str, Loader] = {}

    def repo_row(self, key: str) -> int | None:
        """The top-level row of the repository ``key``, if it is listed."""
        for row in range(self.rowCount()):
            if self.item(row, 0).data(REPO_ROLE) == key:
                return row
        return None

    def remove_repository(self, key: str) -> None:
        """Stop showing the repository ``key``."""
        row = self.repo_row(key)
        self._named.pop(key, None)
        self.loaders.pop(key, None)
        if row is not None:
            self.removeRow(row)

    def populate(self, key: str, repo_name: str, models: list[ModelRow],
                 versions: dict[str, list[VersionRow]]) -> None:  # fmt: skip
        """Show one repository's models and versions (replacing what was shown of it)."""
        self.place(key, repository_rows(key, repo_name, models, versions))

    def place(self, key: str, root: QStandardItem) -> None:
        """Show a repository's rows made by :func:`repository_rows` (replacing its old ones).
        Models whose versions were made in the old rows (opened, searched) get them made again,
        so a search or an expansion shown does not flicker through a re-read."""
        row = self.repo_row(key)
        made: list[str] = []
        if row is not None:
            old = self.item(row, 0)
            made = [old.child(r, 0).data(REF_ROLE) for r in range(old.rowCount())
                    if old.child(r, 0).rowCount()]  # fmt: skip
        self._named.pop(key, None)
        with self._changing():
            if row is None:  # new repositories go above the stores' and remotes' places
                self.insertRow(self.rowCount() - FIXED_ROWS, root)
            else:
                self.removeRow(row)
                self.insertRow(row, root)
        self.fetch_models(key, made)

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Rows are being inserted or removed: a fetchMore asked meanwhile (by whoever watches
        rowsInserted) waits until the change is done, not nesting an insertion inside it."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    @property
    def pruning(self) -> bool:
        """True while rows of models or versions that are gone are removed in place. Qt then
        moves a view's current row from a removed row to a neighbour: no user chose that
        row, so the window does not show it (it says the shown version is gone instead)."""
        return self._pruning > 0

    @contextmanager
    def _prune(self) -> Iterator[None]:
        self._pruning += 1
        try:
            yield
        finally:
            self._pruning -= 1

    # -- versions made on demand ----------------------------------------------------------

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        """A model whose versions are not made yet has children (the view shows its arrow)."""
        if parent.isValid() and parent.column() == 0 and parent.data(PENDING_ROLE) is not None:
            return True
        return super().hasChildren(parent)

    def canFetchMore(self, parent: Index) -> bool:
        """A model's versions can be made (they are not yet)."""
        return parent.isValid() and parent.data(PENDING_ROLE) is not None

    def fetchMore(self, parent: Index) -> None:
        """Make the versions' rows of the model at ``parent`` (when it is expanded)."""
        item = self.itemFromIndex(self.index(parent.row(), 0, parent.parent()))
        if item is None:
            return
        if self._busy:
            QTimer.singleShot(0, self, lambda: self._make_versions_later(item))
        else:
            self._make_versions(item)

    def _make_versions_later(self, item: QStandardItem) -> None:
        try:
            self._make_versions(item)
        except RuntimeError:  # its row was removed meanwhile (the item with it)
            return

    def _make_versions(self, item: QStandardItem, versions: Made | None = None) -> None:
        """Make the version rows of a model's ``item`` from ``versions`` (read, or made in a
        job), else from those its Pending holds, else from what the loader reads (one model:
        a short indexed read)."""
        pending = item.data(PENDING_ROLE)
        if not isinstance(pending, Pending):
            return
        key, model = item.data(REPO_ROLE), item.data(REF_ROLE)
        if versions is None:
            versions = pending.versions
        if versions is None:
            loader = self.loaders.get(key)
            versions = loader([model]).get(model, ()) if loader is not None else ()
        item.setData(None, PENDING_ROLE)
        item.appendRows([v if isinstance(v, QStandardItem) else version_item(key, model, v)
                         for v in versions])  # fmt: skip

    def made_models(self, key: str) -> list[str]:
        """The models of repository ``key`` whose version rows are made (opened, searched):
        a re-read reads their versions too, so they are made again at once."""
        return [name for name, item in self.model_items(key).items() if item.rowCount()]

    def model_items(self, key: str) -> dict[str, QStandardItem]:
        """The rows of repository ``key``'s models by name (kept until its rows change)."""
        named = self._named.get(key)
        if named is None:
            row = self.repo_row(key)
            root = self.item(row, 0) if row is not None else None
            children = (root.child(r, 0) for r in range(root.rowCount())) if root else ()
            named = self._named[key] = {c.data(REF_ROLE): c for c in children}
        return named

    def listed_keys(self) -> list[str]:
        """The keys of the repositories listed, in their order."""
        return [self.item(r, 0).data(REPO_ROLE) for r in range(self.rowCount() - FIXED_ROWS)]

    def fetch_models(
        self, key: str | None, names: Iterable[str], versions: Mapping[str, Made] | None = None,
    ) -> None:  # fmt: skip
        """Make the versions' rows of the models ``names`` in repository ``key`` (every one
        listed when None), e.g. before a search shows the versions it found; from ``versions``
        (read in a job) where it has them, the others read in one call of the loader."""
        names = list(names)
        for k in [key] if key is not None else self.listed_keys():
            items = self.model_items(k)
            todo = [(n, items[n]) for n in names
                    if n in items and items[n].data(PENDING_ROLE) is not None]  # fmt: skip
            given = dict(versions or {})
            unread = [n for n, item in todo
                      if n not in given and item.data(PENDING_ROLE).versions is None]  # fmt: skip
            loader = self.loaders.get(k)
            if unread and loader is not None:
                given.update(loader(unread))
            for name, item in todo:
                self._make_versions(item, given.get(name))

    def update_models(
        self, key: str, models: Mapping[str, ModelRow | None],
        versions: Mapping[str, Sequence[VersionRow]],
    ) -> int:  # fmt: skip
        """Show a few re-read models of repository ``key`` (None: it is gone) without touching
        the others' rows: each row is updated in place (so its expansion and selection stay),
        a new model's row added. Returns how many models the repository now lists."""
        row = self.repo_row(key)
        if row is None:
            return 0
        root = self.item(row, 0)
        items = self.model_items(key)
        for name, m in models.items():
            old = items.get(name)
            if m is None:
                if old is not None:
                    del items[name]
                    with self._changing(), self._prune():
                        root.removeRow(old.row())
                continue
            new = model_item(key, m, versions.get(name, ()))
            if old is None:
                with self._changing():
                    root.appendRow(new)
                items[name] = root.child(root.rowCount() - 1, 0)
                continue
            for role in _ROW_ROLES:
                if old.data(role) != new.data(role):
                    old.setData(new.data(role), role)
            if old.rowCount() or old.data(PENDING_ROLE) is None:
                self._update_versions(old, key, name, versions.get(name, ()))
            else:  # not open: its versions are read afresh when it is
                old.setData(Pending(None), PENDING_ROLE)
        count = root.rowCount()
        root.setData((plural(count, "model"),), TEXTS_ROLE)
        return count

    def _update_versions(self, item: QStandardItem, key: str, model: str,
                         versions: Sequence[VersionRow]) -> None:  # fmt: skip
        """Bring a made model's version rows in line with ``versions`` (rows of versions kept
        are updated in place, gone ones removed, new ones added)."""
        wanted = {f"{model}@{v.seq}": v for v in versions}
        for r in reversed(range(item.rowCount())):
            child = item.child(r, 0)
            v = wanted.pop(child.data(REF_ROLE), None)
            if v is None:
                with self._prune():
                    item.removeRow(r)
                continue
            new = version_item(key, model, v)
            for role in _ROW_ROLES:
                if child.data(role) != new.data(role):
                    child.setData(new.data(role), role)
        if wanted:
            item.appendRows([version_item(key, model, v) for v in wanted.values()])

    def populate_remote(
        self, name: str, url: str, versions: list[RemoteVersion], error: str = ""
    ) -> None:
        """Show one remote's models and versions (or the error that kept it from listing)."""
        remotes = self.item(self.rowCount() - 1, 0)
        for r in range(remotes.rowCount()):
            if remotes.child(r, 0).data(REMOTE_ROLE) == (name, None):
                remotes.removeRow(r)
                break
        top = _item(f"{name}  ({url})" + (f"  — {error}" if error else ""), "", tip=error or url)
        top.setData((name, None), REMOTE_ROLE)
        models: dict[str, QStandardItem] = {}
        for v in versions:
            if v.model not in models:
                models[v.model] = _item(v.model, "")
                models[v.model].setData((name, v.model), REMOTE_ROLE)
                top.appendRow(models[v.model])
            version = _size(
                _item(_version_text(v.seq, v.labels, v.message), ""), v.logical_bytes, False
            )
            version.setData((name, f"{v.model}@{v.seq}"), REMOTE_ROLE)
            models[v.model].appendRow(version)
            models[v.model].setColumnCount(len(TREE_COLUMNS))
        top.setColumnCount(len(TREE_COLUMNS))
        remotes.appendRow(top)
        remotes.setColumnCount(len(TREE_COLUMNS))

    def populate_stores(self, listing: list[tuple[Store, list[StoreModel]]]) -> None:
        """Show the stores found and their models (a model with errors says how many)."""
        place = self.item(self.rowCount() - FIXED_ROWS, 0)
        place.removeRows(0, place.rowCount())
        for store, models in listing:
            top = _size(_item(f"{store.title}  ({store.root})", "", tip=str(store.root)),
                        disk_size(models), True)  # fmt: skip
            top.setData((str(store.root), None), STORE_ROLE)
            for m in models:
                refs = f"  [{', '.join(m.refs)}]" if m.refs else ""
                rev = f"@{m.revision[:10]}" if m.revision else ""
                bad = f"  — {len(m.errors)} unreadable" if m.errors else ""
                tip = m.errors or plural(len(m.files), "file")
                item = _size(_item(f"{m.name}{rev}{refs}{bad}", "", tip=tip), m.size, True)
                item.setData((str(store.root), m.ref), STORE_ROLE)
                top.appendRow(item)
            top.setColumnCount(len(TREE_COLUMNS))
            place.appendRow(top)
        place.setColumnCount(len(TREE_COLUMNS))

    def models_of(self, key: str) -> list[str]:
        """The model names listed under repository ``key`` (as stored, not as displayed)."""
        row = self.repo_row(key)
        if row is None:
            return []
        root = self.item(row, 0)
        return [root.child(r, 0).data(REF_ROLE) for r in range(root.rowCount())]
