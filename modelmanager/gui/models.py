"""Qt item models over Qt-free data: the repository tree and the tensor table."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

from modelmanager.cli.output import human_bytes, human_count
from modelmanager.core.catalog import ModelRow, VersionRow
from modelmanager.core.codecs import codec_by_id
from modelmanager.errors import IntegrityError
from modelmanager.services.history import VersionDetails

REF_ROLE = Qt.ItemDataRole.UserRole + 1
#: The repository an item belongs to: its root folder as text ("" for the remotes' place).
REPO_ROLE = Qt.ItemDataRole.UserRole + 2
Index = QModelIndex | QPersistentModelIndex
REMOTES = "Remote repositories"


def _item(text: str, repo: str, ref: str | None = None, tip: str = "") -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    item.setData(repo, REPO_ROLE)
    if ref is not None:
        item.setData(ref, REF_ROLE)
    if tip:
        item.setToolTip(tip)
    return item


class RepoTreeModel(QStandardItemModel):
    """Repositories -> models -> versions (with their labels), then a place for remotes.

    Each item carries its reference (REF_ROLE) and its repository's key (REPO_ROLE).
    """

    def __init__(self) -> None:
        super().__init__()
        self.setHorizontalHeaderLabels(["Name", "Size"])
        remotes = _item(REMOTES, "", tip="Repositories on S3-compatible storage or HTTP "
                        "will be listed here")  # fmt: skip
        self.appendRow([remotes, _item("", "")])

    def repo_row(self, key: str) -> int | None:
        """The top-level row of the repository ``key``, if it is listed."""
        for row in range(self.rowCount()):
            if self.item(row, 0).data(REPO_ROLE) == key:
                return row
        return None

    def repositories(self) -> list[str]:
        """Keys of the listed local repositories, in order."""
        return [self.item(r, 0).data(REPO_ROLE) for r in range(self.rowCount())
                if self.item(r, 0).data(REPO_ROLE)]  # fmt: skip

    def remove_repository(self, key: str) -> None:
        row = self.repo_row(key)
        if row is not None:
            self.removeRow(row)

    def populate(self, key: str, repo_name: str, models: list[ModelRow],
                 versions: dict[str, list[VersionRow]]) -> None:  # fmt: skip
        """Show one repository's models and versions (replacing what was shown of it)."""
        root = _item(repo_name, key, tip=key)
        for m in models:
            item = _item(m.name, key, m.name, f"{m.versions} versions, newest @{m.latest}")
            for v in versions.get(m.name, []):
                labels = f"  [{', '.join(v.labels)}]" if v.labels else ""
                child = _item(f"@{v.seq}{labels}  {v.message}".rstrip(), key, f"{m.name}@{v.seq}",
                              f"{v.created[:19].replace('T', ' ')}  {v.message}")  # fmt: skip
                item.appendRow([child, _item(human_bytes(v.logical_bytes), key)])
            root.appendRow([item, _item(human_bytes(m.logical_bytes), key)])
        row = self.repo_row(key)
        if row is None:  # new repositories go above the remotes' place
            self.insertRow(self.rowCount() - 1, [root, _item("", key)])
        else:
            self.removeRow(row)
            self.insertRow(row, [root, _item("", key)])

    def models_of(self, key: str) -> list[str]:
        """The model names listed under repository ``key``."""
        row = self.repo_row(key)
        if row is None:
            return []
        root = self.item(row, 0)
        return [root.child(r, 0).text() for r in range(root.rowCount())]


COLUMNS = ("Name", "Dtype", "Shape", "Parameters", "Bytes", "Stored", "Codec", "File")


class TensorTableModel(QAbstractTableModel):
    """The tensors of one version; rows are plain tuples so 100,000 of them stay cheap."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[Any, ...]] = []

    def set_details(self, details: VersionDetails | None) -> None:
        self.beginResetModel()
        self.rows = []
        if details is not None:
            storage = details.tensor_storage()
            for (f, t), (stored, codec) in zip(details.manifest.tensors, storage, strict=True):
                try:
                    codec_name = codec_by_id(codec).name if codec >= 0 else "?"
                except IntegrityError:
                    codec_name = "?"
                shape = "x".join(map(str, t.shape)) or "scalar"
                self.rows.append(
                    (t.name, t.dtype, shape, t.numel, t.nbytes, stored, codec_name, f.path)
                )
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

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
        value = self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            col = index.column()
            if col == 3:
                return human_count(value)
            if col in (4, 5):
                return human_bytes(value)
            return value
        if role == Qt.ItemDataRole.UserRole:  # sort key: the raw value
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (3, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
