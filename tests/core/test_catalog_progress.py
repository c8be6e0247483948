"""Catalog.sync and Catalog.rebuild report how far they have read (the window shows it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmanager.core import catalog as catalog_module
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.support.builders import write_safetensors


def _populate(ws: Workspace, tmp_path: Path, models: int, versions: int) -> None:
    for i in range(models):
        for seq in range(1, versions + 1):
            path = tmp_path / "src" / f"{i}-{seq}.safetensors"
            write_safetensors(path, {"w": np.full((2,), i * 10 + seq, dtype=np.float32)})
            import_paths(ws, [path], f"m{i}", message=f"step {seq}")


def test_rebuild_reports_progress_every_few_versions_and_at_the_end(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _populate(ws, tmp_path, 3, 3)
    monkeypatch.setattr(catalog_module, "PROGRESS_EVERY", 4)
    heard: list[tuple[int, int]] = []
    assert ws.catalog.rebuild(lambda done, total: heard.append((done, total))).added == 9
    assert heard == [(4, 9), (8, 9), (9, 9)]


def test_a_sync_with_nothing_to_read_reports_nothing(ws: Workspace, tmp_path: Path) -> None:
    _populate(ws, tmp_path, 1, 2)
    heard: list[tuple[int, int]] = []
    assert ws.catalog.sync(lambda done, total: heard.append((done, total))).added == 0
    assert heard == []
