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
Index = QModelIndex | QPersistentModelIndex


class RepoTreeModel(QStandardItemModel):
    """Repository -> models -> versions (with their labels). Each item carries its reference."""

    def __init__(self) -> None:
        super().__init__()
        self.setHorizontalHeaderLabels(["Name", "Size"])

    def populate(self, repo_name: str, models: list[ModelRow],
                 versions: dict[str, list[VersionRow]]) -> None:  # fmt: skip
        """Replace the contents with one repository's models and versions."""
        self.removeRows(0, self.rowCount())
        root = QStandardItem(repo_name)
        root.setEditable(False)
        for m in models:
            item = QStandardItem(m.name)
            item.setData(m.name, REF_ROLE)
            item.setEditable(False)
            item.setToolTip(f"{m.versions} versions, newest @{m.latest}")
            size = QStandardItem(human_bytes(m.logical_bytes))
            size.setEditable(False)
            for v in versions.get(m.name, []):
                labels = f"  [{', '.join(v.labels)}]" if v.labels else ""
                child = QStandardItem(f"@{v.seq}{labels}  {v.message}".rstrip())
                child.setData(f"{m.name}@{v.seq}", REF_ROLE)
                child.setEditable(False)
                child.setToolTip(f"{v.created[:19].replace('T', ' ')}  {v.message}")
                vsize = QStandardItem(human_bytes(v.logical_bytes))
                vsize.setEditable(False)
                item.appendRow([child, vsize])
            root.appendRow([item, size])
        self.appendRow([root, QStandardItem("")])


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
