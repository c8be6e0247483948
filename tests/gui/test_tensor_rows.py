"""The Tensors tab's rows are made on demand (issue 18: a 100,000-tensor version is shown without
making 100,000 tuples first), and say exactly what the eager rows said."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt

from modelmanager.core.units import human_bytes
from modelmanager.gui.tensor_table import COLUMNS, TensorTableModel, VersionTensorRows, tensor_rows
from modelmanager.services import Workspace
from modelmanager.services.history import version_details
from modelmanager.services.importing import import_paths
from tests.support.builders import hf_folder


def test_rows_made_on_demand_match_every_tensor_of_every_file(  # type: ignore[no-untyped-def]
    qtmodeltester, ws: Workspace, tmp_path: Path
) -> None:
    folder = hf_folder(tmp_path / "tiny", np.random.default_rng(4), shards=2)
    import_paths(ws, [folder], "acme/tiny")
    details = version_details(ws, "acme/tiny@1")
    files = details.manifest.files
    assert any(not f.tensors for f in files)
    assert sum(bool(f.tensors) for f in files) == 2
    storage = details.tensor_storage()
    pairs = zip(details.manifest.tensors, storage, strict=True)
    expected = [(t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", t.numel, t.nbytes,
                 stored, codec, f.path) for (f, t), (stored, codec) in pairs]  # fmt: skip
    rows = tensor_rows(details)
    assert isinstance(rows, VersionTensorRows)
    assert len(rows) == len(expected) == 8
    made = [rows.row(i) for i in range(len(rows))]
    assert [r[:6] + r[7:] for r in made] == [e[:6] + e[7:] for e in expected]
    assert all(isinstance(r[6], str) and r[6] != "" for r in made)  # codec names
    table = TensorTableModel()
    table.set_rows(rows)
    assert set(rows._columns) == {0}  # sorted by name: only the names were read
    assert [table.index(r, 0).data() for r in range(8)] == sorted(e[0] for e in expected)
    for column in range(len(COLUMNS)):
        table.sort(column, Qt.SortOrder.DescendingOrder)
        shown = [table.index(r, column).data(Qt.ItemDataRole.UserRole) for r in range(8)]
        assert shown == sorted((r[column] for r in made), reverse=True), COLUMNS[column]
    table.sort(4, Qt.SortOrder.AscendingOrder)
    assert table.index(0, 4).data() == human_bytes(min(e[4] for e in expected))
    table.set_filter("mlp")
    assert table.rowCount() == 2
    qtmodeltester.check(table)
    table.set_rows([("a", "F32", "1", 1, 4, 4, "raw", "f")])  # a store's ready rows
    assert table.rowCount() == 0  # "mlp" still filters
    table.set_filter("")
    assert table.rowCount() == 1
    assert table.index(0, 0).data() == "a"
