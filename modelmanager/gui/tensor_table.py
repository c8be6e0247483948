"""The Tensors tab's table model: one row per tensor of the shown version, formatted only when
Qt draws it (a 100,000-tensor version makes no 100,000 tuples)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from modelmanager.core.codecs import codec_by_id
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, human_count
from modelmanager.errors import IntegrityError
from modelmanager.gui.models import Index
from modelmanager.services.history import VersionDetails

COLUMNS = ("Name", "Dtype", "Shape", "Parameters", "Bytes", "Stored", "Codec", "File")


def _codec_name(codec: int) -> str:
    try:
        return codec_by_id(codec).name if codec >= 0 else "?"
    except IntegrityError:
        return "?"


class TensorRows:
    """The Tensors tab's rows: a list of ready tuples (a store's model), or one version's
    tensors formatted on demand (:class:`VersionTensorRows`). The table asks a row's cells
    when it draws them, and a column's raw values when it sorts or filters by it."""

    def __init__(self, rows: Sequence[tuple[Any, ...]] = ()) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, i: int) -> tuple[Any, ...]:
        """Row ``i``'s raw values, one per :data:`COLUMNS`."""
        return tuple(self._rows[i])

    def column(self, c: int) -> Sequence[Any]:
        """Every row's raw value in column ``c`` (what it sorts by)."""
        return [r[c] for r in self._rows]


class VersionTensorRows(TensorRows):
    """One version's tensors as rows, made when asked: a 100,000-tensor version is shown
    without making 100,000 tuples first (0.2 s); only the name column is read to sort by
    name, and a row is made when it is drawn."""

    def __init__(self, details: VersionDetails) -> None:
        super().__init__()
        self._files = [f for f in details.manifest.files if f.tensors]
        self._starts = list(accumulate((len(f.tensors) for f in self._files), initial=0))
        self._storage = details.tensor_storage()  # one sweep over the chunks: 0.02 s
        self._codecs: dict[int, str] = {}
        self._columns: dict[int, Sequence[Any]] = {}

    def __len__(self) -> int:
        return self._starts[-1]

    def _codec(self, codec: int) -> str:
        name = self._codecs.get(codec)
        if name is None:
            name = self._codecs[codec] = _codec_name(codec)
        return name

    def row(self, i: int) -> tuple[Any, ...]:
        k = bisect_right(self._starts, i) - 1  # the file tensor ``i`` is in
        f = self._files[k]
        t = f.tensors[i - self._starts[k]]
        stored, codec = self._storage[i]
        return (t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", t.numel, t.nbytes,
                stored, self._codec(codec), f.path)  # fmt: skip

    def column(self, c: int) -> Sequence[Any]:
        found = self._columns.get(c)
        if found is None:
            if c == 0:
                found = [t.name for f in self._files for t in f.tensors]
            elif c == 5:
                found = [stored for stored, _codec in self._storage]
            else:
                found = [self.row(i)[c] for i in range(len(self))]
            self._columns[c] = found
        return found


def tensor_rows(details: VersionDetails) -> VersionTensorRows:
    """The rows of the Tensors tab for one version (in the job that read it; their cells are
    formatted when the table draws them)."""
    rows = VersionTensorRows(details)
    rows.column(0)  # the names, which the table sorts by first
    return rows


class TensorTableModel(QAbstractTableModel):
    """The tensors of one version; sorts and filters itself.

    Rows are plain tuples, and sorting and filtering run as Python list operations on them
    (about 0.1 s for 100,000 rows) instead of a proxy model calling ``data()`` once per
    comparison (4 s for the same rows, measured in benchmarks/gui_listing.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: TensorRows = TensorRows()
        self.visible: list[int] = []  # indices into rows, in display order
        self._cached: tuple[int, tuple[Any, ...]] = (-1, ())  # the row drawn last
        self.filter_text = ""
        self.sort_column, self.sort_order = 0, Qt.SortOrder.AscendingOrder

    def set_rows(self, rows: TensorRows | Sequence[tuple[Any, ...]]) -> None:
        """Show rows made by :func:`tensor_rows` (or ready tuples, one per tensor): cheap,
        only sorting and filtering; cells are formatted when drawn."""
        self.beginResetModel()
        self.rows = rows if isinstance(rows, TensorRows) else TensorRows(rows)
        self._cached = (-1, ())
        self._arrange()
        self.endResetModel()

    def _arrange(self) -> None:
        text = self.filter_text.lower()
        n = len(self.rows)
        if text:
            names = self.rows.column(0)
            keep = [i for i in range(n) if text in names[i].lower()]
        else:
            keep = list(range(n))
        keys = self.rows.column(self.sort_column)
        keep.sort(key=keys.__getitem__, reverse=self.sort_order == Qt.SortOrder.DescendingOrder)
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
        i = self.visible[index.row()]
        if self._cached[0] != i:  # a row's cells are asked one after another: make it once
            self._cached = (i, self.rows.row(i))
        value = self._cached[1][index.column()]
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
