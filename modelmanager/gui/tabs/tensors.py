"""The Tensors tab: every tensor of the shown version (or store model), sortable, filterable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from modelmanager.gui.tensor_table import TensorRows, TensorTableModel


class TensorsTab(QWidget):
    """A name filter over a sortable table of tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.tensor_filter = QLineEdit()
        self.tensor_filter.setPlaceholderText("Filter tensors by name")
        self.tensor_model = TensorTableModel()
        self.tensor_filter.textChanged.connect(self.tensor_model.set_filter)
        self.tensor_view = QTableView()
        self.tensor_view.setModel(self.tensor_model)
        self.tensor_view.setSortingEnabled(True)
        self.tensor_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.tensor_view.verticalHeader().setVisible(False)
        # One text line a row, as the tree's (the style's default row is twice that).
        self.tensor_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.tensor_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tensor_view.setWordWrap(False)
        v = QVBoxLayout(self)
        v.addWidget(self.tensor_filter)
        v.addWidget(self.tensor_view)

    def set_rows(self, rows: TensorRows | Sequence[tuple[Any, ...]]) -> None:
        """Show ``rows`` (tensor_table.tensor_rows: formatted when drawn; or ready tuples)."""
        self.tensor_model.set_rows(rows)
