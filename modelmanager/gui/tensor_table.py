"""The Tensors tab's table model: one row per tensor of the shown version, formatted only when
Qt draws it (a 100,000-tensor version makes no 100,000 tuples)."""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate, chain
from math import prod
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
    without making 100,000 tuples (0.2 s) or records (0.1 s) first; a row is made from the
    manifest's columns when it is drawn, and a column is read whole only to sort by it."""

    def __init__(self, details: VersionDetails) -> None:
        super().__init__()
        self._files = [f for f in details.manifest.files if f.tensors]
        self._tables = [f.tensor_columns for f in self._files]
        self._starts = list(accumulate((len(c.names) for c in self._tables), initial=0))
        # Stored bytes and codec per tensor: one sweep over the chunks (0.02 s), two lists.
        self._stored, self._codec_ids = details.storage_columns()
        self._codecs: dict[int, str] = {}
        self._columns: dict[int, Sequence[Any]] = {}
        self._orders: dict[tuple[int, bool], list[int]] = {}

    def __len__(self) -> int:
        return self._starts[-1]

    def _codec(self, codec: int) -> str:
        name = self._codecs.get(codec)
        if name is None:
            name = self._codecs[codec] = _codec_name(codec)
        return name

    def row(self, i: int) -> tuple[Any, ...]:
        k = bisect_right(self._starts, i) - 1  # the file tensor ``i`` is in
        c, j = self._tables[k], i - self._starts[k]
        shape = c.shapes[j]
        return (c.names[j], c.dtypes[j], "x".join(map(str, shape)) or "scalar", prod(shape),
                c.ends[j] - c.starts[j], self._stored[i], self._codec(self._codec_ids[i]),
                self._files[k].path)  # fmt: skip

    def column(self, c: int) -> Sequence[Any]:
        found = self._columns.get(c)
        if found is None:
            found = self._columns[c] = self._read_column(c)
        return found

    def _read_column(self, c: int) -> list[Any]:
        """Column ``c`` of every row, from the manifest's columns (C loops where it can)."""
        tables = self._tables
        if c == 0:
            return list(chain.from_iterable(t.names for t in tables))
        if c == 1:
            return list(chain.from_iterable(t.dtypes for t in tables))
        if c == 2:
            return ["x".join(map(str, s)) or "scalar" for t in tables for s in t.shapes]
        if c == 3:
            return list(chain.from_iterable(map(prod, t.shapes) for t in tables))
        if c == 4:
            return list(chain.from_iterable(map(operator.sub, t.ends, t.starts) for t in tables))
        if c == 5:
            return self._stored
        if c == 6:
            return list(map(self._codec, self._codec_ids))
        return [f.path for f, t in zip(self._files, tables, strict=True) for _ in t.names]

    def order(self, c: int, descending: bool) -> list[int]:
        """Every row's index sorted by column ``c`` (kept: made once per column and order)."""
        found = self._orders.get((c, descending))
        if found is None:
            keys = self.column(c)
            found = sorted(range(len(self)), key=keys.__getitem__, reverse=descending)
            self._orders[(c, descending)] = found
        return found


def tensor_rows(details: VersionDetails) -> VersionTensorRows:
    """The rows of the Tensors tab for one version (in the job that read it; their cells are
    formatted when the table draws them)."""
    rows = VersionTensorRows(details)
    rows.order(0, False)  # sorted by name, as the table shows them first (0.05 s unsorted)
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
        descending = self.sort_order == Qt.SortOrder.DescendingOrder
        if not text and isinstance(self.rows, VersionTensorRows):
            self.visible = list(self.rows.order(self.sort_column, descending))
            return  # sorted in the job that read the version: no sort on this thread
        if text:
            names = self.rows.column(0)
            keep = [i for i in range(n) if text in names[i].lower()]
        else:
            keep = list(range(n))
        keys = self.rows.column(self.sort_column)
        keep.sort(key=keys.__getitem__, reverse=descending)
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
