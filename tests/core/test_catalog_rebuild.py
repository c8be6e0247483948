"""The catalog's search rows follow their versions by rowid: rebuilt, removed, upgraded from 2."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from modelmanager.core.catalog import SCHEMA_VERSION, BenchRow, Catalog, catalog_path
from modelmanager.services import Workspace, history, open_workspace
from modelmanager.services.importing import import_paths
from tests.support.builders import write_safetensors

#: The schema of catalog version 2 (release 0.1.x): search keyed by an UNINDEXED text column.
SCHEMA_2 = """
CREATE TABLE versions(
    key TEXT PRIMARY KEY, model TEXT NOT NULL, seq INTEGER NOT NULL, parent INTEGER,
    created TEXT NOT NULL, message TEXT NOT NULL, metadata TEXT NOT NULL,
    files INTEGER NOT NULL, tensors INTEGER NOT NULL, parameters INTEGER NOT NULL,
    logical_bytes INTEGER NOT NULL, dtypes TEXT NOT NULL, size INTEGER NOT NULL);
CREATE UNIQUE INDEX versions_model ON versions(model, seq);
CREATE TABLE labels(model TEXT NOT NULL, label TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY(model, label));
CREATE VIRTUAL TABLE search USING fts5(key UNINDEXED, name, message, metadata);
CREATE TABLE bench(run TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    device TEXT NOT NULL, device_id TEXT NOT NULL, ref TEXT NOT NULL, strategy TEXT NOT NULL,
    threads INTEGER NOT NULL, cache TEXT NOT NULL, bytes INTEGER NOT NULL,
    seconds REAL NOT NULL);
CREATE INDEX bench_run ON bench(run);
"""

QUERIES = ("alpha", "bravo", "org", "vision", "run 2", "prod", "zzz")


def _populate(ws: Workspace, tmp_path: Path) -> None:
    """Three models of three versions each, with messages, metadata and a label."""
    for i, model in enumerate(("org/alpha", "org/bravo", "vision")):
        for seq in range(1, 4):
            path = tmp_path / "src" / model / f"{seq}.safetensors"
            write_safetensors(path, {"w": np.full((3,), i * 10 + seq, dtype=np.float32)})
            labels = ("prod",) if seq == 2 else ()
            import_paths(ws, [path], model, message=f"{model} step {seq}",
                         metadata={"run": f"run {seq}"}, labels=labels)  # fmt: skip


def _found(ws: Workspace) -> dict[str, list[str]]:
    return {q: [f"{r.model}@{r.seq}" for r in ws.catalog.search(q)] for q in QUERIES}


def _row_counts(catalog: Catalog) -> tuple[int, int]:
    with sqlite3.connect(catalog.path) as db:
        versions = db.execute("SELECT COUNT(*) FROM versions").fetchone()[0]
        search = db.execute("SELECT COUNT(*) FROM search").fetchone()[0]
    return versions, search


def test_rebuild_finds_what_the_incremental_catalog_found(ws: Workspace, tmp_path: Path) -> None:
    _populate(ws, tmp_path)
    before = _found(ws)
    assert before["alpha"] == ["org/alpha@1", "org/alpha@2", "org/alpha@3"]
    assert before["prod"] == ["org/alpha@2", "org/bravo@2", "vision@2"]
    assert before["zzz"] == []
    assert ws.catalog.rebuild().added == 9
    assert _found(ws) == before
    assert _row_counts(ws.catalog) == (9, 9)


def test_a_removed_version_leaves_no_search_row(ws: Workspace, tmp_path: Path) -> None:
    _populate(ws, tmp_path)
    history.remove_versions(ws, ["org/bravo@3"])
    assert "org/bravo@3" not in _found(ws)["bravo"]
    assert _row_counts(ws.catalog) == (8, 8)
    # A version removed by another process: the next sync forgets it, search row included.
    other = open_workspace(ws.repo.root)
    history.remove_versions(other, ["vision@1"])
    other.close()
    ws.catalog.sync()
    assert _found(ws)["vision"] == ["vision@2", "vision@3"]
    assert _row_counts(ws.catalog) == (7, 7)


def test_a_version_catalogued_twice_keeps_one_search_row(ws: Workspace, tmp_path: Path) -> None:
    _populate(ws, tmp_path)
    manifest = ws.repo.resolve("vision@3")
    key = "models/vision/versions/00000003.json"
    ws.catalog.add_version(key, manifest, 1)  # the size changed: the row is replaced
    assert _row_counts(ws.catalog) == (9, 9)
    assert _found(ws)["vision"] == ["vision@1", "vision@2", "vision@3"]


def test_a_version_2_catalog_is_upgraded_and_keeps_benchmarks(
    ws: Workspace, tmp_path: Path
) -> None:
    _populate(ws, tmp_path)
    expected = _found(ws)
    path = catalog_path(tmp_path / "cache", ws.repo)
    ws.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(path) as db:  # what release 0.1.x left: rows of schema 2
        db.executescript(SCHEMA_2)
        db.execute("INSERT INTO versions VALUES('models/old/versions/00000001.json','old',1,"
                   "NULL,'2020','old','{}',0,0,0,0,'{}',1)")  # fmt: skip
        db.execute("INSERT INTO search VALUES('models/old/versions/00000001.json','old','','')")
        db.execute("INSERT INTO bench VALUES('r1','2026-01-01','device','main','d1','','',1,"
                   "'cold',1000,0.5)")  # fmt: skip
        db.execute("PRAGMA user_version=2")
    db.close()

    again = open_workspace(ws.repo.root)
    try:
        assert again.catalog.path == path
        assert _found(again) == expected
        assert again.catalog.search("old") == []
        assert _row_counts(again.catalog) == (9, 9)
        assert again.catalog.bench_rows() == [
            BenchRow("r1", "2026-01-01", "device", "main", "d1", "", "", 1, "cold", 1000, 0.5)
        ]
    finally:
        again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    db.close()


def test_search_rows_whose_versions_rows_went_are_ignored_and_replaced(
    ws: Workspace, tmp_path: Path
) -> None:
    """Rows deleted from versions alone (by hand) leave search rows behind: they match
    nothing, and the next sync writes over them instead of failing on their rowid."""
    _populate(ws, tmp_path)
    with sqlite3.connect(ws.catalog.path) as db:
        db.execute("DELETE FROM versions WHERE model='vision'")
    db.close()
    assert _found(ws)["vision"] == []
    ws.catalog.sync()
    assert _found(ws)["vision"] == ["vision@1", "vision@2", "vision@3"]
    assert _row_counts(ws.catalog) == (9, 9)


def test_all_versions_is_every_models_versions_in_one_read(tmp_path: Path) -> None:
    """What the library tree reads at once equals asking model by model."""
    from modelmanager.services import init_repository
    from modelmanager.services.history import set_label
    from modelmanager.services.importing import import_paths
    from tests.support.builders import write_safetensors

    ws = init_repository(tmp_path / "repo")
    for name, n in (("b/one", 2), ("a", 1), ("c", 3)):
        for i in range(n):
            src = tmp_path / f"{name}-{i}" / "w.safetensors"
            write_safetensors(src, {"w": np.full(4, i, np.float32)})
            import_paths(ws, [src.parent], name)
    set_label(ws, "c@2", "prod")
    everything = ws.catalog.all_versions()
    assert everything == {m: ws.catalog.versions(m) for m in ("a", "b/one", "c")}
    assert [v.labels for v in everything["c"]] == [(), ("prod",), ()]
