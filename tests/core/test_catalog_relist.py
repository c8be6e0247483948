"""A full catalog sync reads manifests before its write transaction, and inside it lists again
only what may have changed meanwhile: a change another process makes in between is never
written over (issue 18: the second full listing is skipped when the change record is as it
was)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from modelmanager import paths
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.builders import write_safetensors


def _populate(ws: Workspace, tmp_path: Path) -> None:
    for i, model in enumerate(("org/alpha", "bravo")):
        for seq in (1, 2):
            path = tmp_path / "src" / f"{i}{seq}.safetensors"
            write_safetensors(path, {"w": np.full(3, i * 10 + seq, dtype=np.float32)})
            import_paths(ws, [path], model)


def _mm(tmp_path: Path, repo: Path, *args: str) -> None:
    """A command in another process, with a catalog of its own."""
    env = subprocess_env(tmp_path, **{paths.ENV_CACHE: str(tmp_path / "other-cache")})
    proc = subprocess.run([sys.executable, "-m", "modelmanager", "--repo", str(repo), *args],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def _refs(ws: Workspace) -> list[str]:
    return sorted(f"{v.model}@{v.seq}" for vs in ws.catalog.all_versions().values() for v in vs)


def test_a_version_removed_while_a_rebuild_reads_is_not_catalogued(
    ws: Workspace, tmp_path: Path
) -> None:
    """Another process removes a version after the rebuild read its manifest: the record
    changed, so the folders are listed again and the version stays out."""
    _populate(ws, tmp_path)
    done: list[int] = []

    def meanwhile(read: int, total: int) -> None:
        if read == total and not done:
            done.append(read)
            _mm(tmp_path, ws.repo.root, "rm", "bravo@2")

    ws.catalog.rebuild(meanwhile)
    assert done == [4]
    assert _refs(ws) == ["bravo@1", "org/alpha@1", "org/alpha@2"]


def test_a_version_added_while_a_rebuild_reads_is_caught_up_with(
    ws: Workspace, tmp_path: Path
) -> None:
    """A version another process adds meanwhile is not in this rebuild's rows, and the next
    sync (the record names its model) adds it."""
    _populate(ws, tmp_path)
    extra = write_safetensors(tmp_path / "src" / "extra.safetensors",
                              {"w": np.zeros(3, dtype=np.float32)})  # fmt: skip

    def meanwhile(read: int, total: int) -> None:
        if read == total and "bravo@3" not in _refs(ws):
            _mm(tmp_path, ws.repo.root, "import", str(extra), "--model", "bravo")

    ws.catalog.rebuild(meanwhile)
    assert "bravo@3" not in _refs(ws)
    ws.catalog.sync()
    assert _refs(ws) == ["bravo@1", "bravo@2", "bravo@3", "org/alpha@1", "org/alpha@2"]


def _labels(ws: Workspace) -> dict[str, dict[str, int]]:
    return {m.name: dict(m.labels) for m in ws.catalog.models() if m.labels}


def test_labels_set_and_moved_while_a_rebuild_reads_are_catalogued(
    ws: Workspace, tmp_path: Path
) -> None:
    """The label records' keys come from the one listing made before the rebuild reads; a
    label another process sets meanwhile (a new record) and one it moves are in the rows
    all the same: the record changed, so everything is listed again inside the transaction."""
    _populate(ws, tmp_path)
    _mm(tmp_path, ws.repo.root, "label", "org/alpha@1", "prod")
    done: list[int] = []

    def meanwhile(read: int, total: int) -> None:
        if read == total and not done:
            done.append(read)
            _mm(tmp_path, ws.repo.root, "label", "bravo@2", "prod")  # a new record
            _mm(tmp_path, ws.repo.root, "label", "org/alpha@2", "prod")  # moved

    ws.catalog.rebuild(meanwhile)
    assert done == [4]
    assert _labels(ws) == {"bravo": {"prod": 2}, "org/alpha": {"prod": 2}}
