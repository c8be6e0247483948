"""Qt item models over Qt-free data: the repository tree and the tensor table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

from modelmanager.core.catalog import ModelRow, VersionRow
from modelmanager.core.codecs import codec_by_id
from modelmanager.core.stores import Store, StoreModel, disk_size
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, human_count, plural
from modelmanager.errors import IntegrityError
from modelmanager.services.history import VersionDetails
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
TREE_COLUMNS = ("Name", "Versions", "Size", "Parameters", "Architecture", "Dtypes", "Labels",
                "Updated")  # fmt: skip
#: On a row's first item: the texts of its other columns (the proxy shows them; one item per
#: row, not one per cell, so 50,000 versions fill the tree in a fraction of a second).
TEXTS_ROLE = Qt.ItemDataRole.UserRole + 5
#: On a row's first item, the value column ``c`` sorts by is at role SORT_BASE + c; the name
#: column has one role per order (NAME_ASC, NAME_DESC), so versions stay newest first.
SORT_BASE = Qt.ItemDataRole.UserRole + 10
NAME_ASC, NAME_DESC = SORT_BASE, SORT_BASE + len(TREE_COLUMNS)


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
    item: QStandardItem, versions: int | None, size: int, params: int, arch: str,
    dtypes: Mapping[str, int], labels: Sequence[str], updated: str,
) -> None:  # fmt: skip
    """Put the other columns' texts and sort values on a model's (``versions`` counted) or a
    version's (None) first item."""
    mix, tags = dtype_mix(dtypes), ", ".join(labels)
    texts = (plural(versions, "version") if versions is not None else "", human_bytes(size),
             human_count(params) if params else "", arch, mix, tags,
             updated[:16].replace("T", " "))  # fmt: skip
    item.setData(tuple(shown(t) for t in texts), TEXTS_ROLE)
    for column, value in enumerate((versions or 0, size, params, arch.lower(), mix, tags,
                                    updated), start=1):  # fmt: skip
        item.setData(value, SORT_BASE + column)


def _size(item: QStandardItem, size: int) -> QStandardItem:
    """Show ``size`` in the Size column of a store's or a remote's row."""
    item.setData(("", human_bytes(size)), TEXTS_ROLE)
    item.setData(size, SORT_BASE + 2)
    return item


def repository_rows(key: str, repo_name: str, models: list[ModelRow],
                    versions: dict[str, list[VersionRow]]) -> QStandardItem:  # fmt: skip
    """A repository's row with its models and versions under it, in no model yet: a job can
    make it (a few seconds' work at 10,000 models), the UI thread only places it."""
    root = _item(repo_name, key, tip=key)
    root.setData((plural(len(models), "model"),), TEXTS_ROLE)
    rows = []
    for m in models:
        item = _item(m.name, key, m.name,
                     f"{plural(m.versions, 'version')}, newest @{m.latest}")  # fmt: skip
        name = m.name.lower()
        item.setData(name, NAME_ASC)
        item.setData(name, NAME_DESC)
        _figures(item, m.versions, m.logical_bytes, m.parameters, m.architecture, m.dtypes,
                 sorted(m.labels), m.updated)  # fmt: skip
        children = []
        for v in versions.get(m.name, []):
            child = _item(_version_text(v.seq, v.labels, v.message), key,
                          f"{m.name}@{v.seq}",
                          f"{v.created[:19].replace('T', ' ')}  {v.message}")  # fmt: skip
            child.setData(-v.seq, NAME_ASC)  # newest first, whichever way names sort
            child.setData(v.seq, NAME_DESC)
            _figures(child, None, v.logical_bytes, v.parameters,
                     str(v.metadata.get("architecture", "")), v.dtypes, v.labels,
                     v.created)  # fmt: skip
            children.append(child)
        item.appendRows(children)
        item.setColumnCount(len(TREE_COLUMNS))
        rows.append(item)
    root.appendRows(rows)
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

    def repo_row(self, key: str) -> int | None:
        """The top-level row of the repository ``key``, if it is listed."""
        for row in range(self.rowCount()):
            if self.item(row, 0).data(REPO_ROLE) == key:
                return row
        return None

    def remove_repository(self, key: str) -> None:
        row = self.repo_row(key)
        if row is not None:
            self.removeRow(row)

    def populate(self, key: str, repo_name: str, models: list[ModelRow],
                 versions: dict[str, list[VersionRow]]) -> None:  # fmt: skip
        """Show one repository's models and versions (replacing what was shown of it)."""
        self.place(key, repository_rows(key, repo_name, models, versions))

    def place(self, key: str, root: QStandardItem) -> None:
        """Show a repository's rows made by :func:`repository_rows` (replacing its old ones)."""
        row = self.repo_row(key)
        if row is None:  # new repositories go above the stores' and remotes' places
            self.insertRow(self.rowCount() - FIXED_ROWS, root)
        else:
            self.removeRow(row)
            self.insertRow(row, root)

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
            version = _size(_item(_version_text(v.seq, v.labels, v.message), ""), v.logical_bytes)
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
                        disk_size(models))  # fmt: skip
            top.setData((str(store.root), None), STORE_ROLE)
            for m in models:
                refs = f"  [{', '.join(m.refs)}]" if m.refs else ""
                rev = f"@{m.revision[:10]}" if m.revision else ""
                bad = f"  — {len(m.errors)} unreadable" if m.errors else ""
                tip = m.errors or plural(len(m.files), "file")
                item = _size(_item(f"{m.name}{rev}{refs}{bad}", "", tip=tip), m.size)
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


COLUMNS = ("Name", "Dtype", "Shape", "Parameters", "Bytes", "Stored", "Codec", "File")


def _codec_name(codec: int) -> str:
    try:
        return codec_by_id(codec).name if codec >= 0 else "?"
    except IntegrityError:
        return "?"


def tensor_rows(details: VersionDetails) -> list[tuple[Any, ...]]:
    """One row per tensor, as the Tensors tab shows it (in the job that read the version:
    about 0.3 s at 100,000 tensors, a few codec names looked up once each)."""
    codecs: dict[int, str] = {}
    storage = details.tensor_storage()
    return [
        (t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", t.numel, t.nbytes, stored,
         codecs.get(codec) or codecs.setdefault(codec, _codec_name(codec)), f.path)
        for (f, t), (stored, codec) in zip(details.manifest.tensors, storage, strict=True)
    ]  # fmt: skip


class TensorTableModel(QAbstractTableModel):
    """The tensors of one version; sorts and filters itself.

    Rows are plain tuples, and sorting and filtering run as Python list operations on them
    (about 0.1 s for 100,000 rows) instead of a proxy model calling ``data()`` once per
    comparison (4 s for the same rows, measured in benchmarks/gui_listing.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[Any, ...]] = []
        self.visible: list[int] = []  # indices into rows, in display order
        self.filter_text = ""
        self.sort_column, self.sort_order = 0, Qt.SortOrder.AscendingOrder

    def set_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Show rows made by :func:`tensor_rows` (cheap: only sorting and filtering)."""
        self.beginResetModel()
        self.rows = rows
        self._arrange()
        self.endResetModel()

    def _arrange(self) -> None:
        text = self.filter_text.lower()
        keep = (
            [i for i, r in enumerate(self.rows) if text in r[0].lower()]
            if text
            else list(range(len(self.rows)))
        )
        col = self.sort_column
        keep.sort(key=lambda i: self.rows[i][col],
                  reverse=self.sort_order == Qt.SortOrder.DescendingOrder)  # fmt: skip
        self.visible = keep

    def set_filter(self, text: str) -> None:
        """Show only tensors whose name contains ``text`` (any case)."""
        self.beginResetModel()
        self.filter_text = text
        self._arrange()
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self.sort_column, self.sort_order = column, order
        self._arrange()
        self.layoutChanged.emit()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.visible)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # fmt: skip
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.rows[self.visible[index.row()]][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            col = index.column()
            if col == 3:
                return human_count(value)
            if col in (4, 5):
                return human_bytes(value)
            return shown(value) if isinstance(value, str) else value  # names come from files
        if role == Qt.ItemDataRole.UserRole:  # the raw value
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (3, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
