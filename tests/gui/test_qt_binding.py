"""The Qt binding must not drain None's reference count (PySide6-Essentials 6.12.0 did)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QStandardItem, QStandardItemModel


def test_void_methods_do_not_drop_references_to_none() -> None:
    item = QStandardItem("x")
    model = QStandardItemModel()
    before = sys.getrefcount(None)
    for _ in range(5000):
        item.setEditable(False)
        item.setToolTip("t")
        model.appendRow([QStandardItem("row")])
    drift = sys.getrefcount(None) - before
    assert drift > -500, f"None lost {-drift} references in 15,000 calls: a binding refcount bug"
