"""The catalog's content index (schema 6, 7): stats totals, models' stored bytes and an old file.

Every figure is checked against what reading every manifest and listing the devices finds
(services.maintenance.stats with the manifests given), on a repository of two devices."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.catalog import SCHEMA_VERSION
from modelmanager.core.codecs import CodecSettings
from modelmanager.errors import ModelManagerError
from modelmanager.services import Workspace, open_workspace
from modelmanager.services.devices import add_device, remove_device
from modelmanager.services.importing import import_paths
from modelmanager.services.lineage import related
from modelmanager.services.maintenance import Stats, stats
from modelmanager.services.policies import set_policy
from modelmanager.services.recompress import recompress
from tests.support.builders import small_model, write_safetensors


def _populate(ws: Workspace, tmp_path: Path) -> None:
    """a@1, a@2 (one tensor changed: most chunks shared), b@1 (shares a tensor with a), and a
    text-only model; two devices."""
    add_device(ws, tmp_path / "second")
    rng = np.random.default_rng(4)
    a = small_model(rng, n=4)
    a2 = dict(a, **{"layer.1.weight": a["layer.1.weight"] + 1})
    b = {"layer.0.weight": a["layer.0.weight"], "other": np.ones((64, 64), np.float32)}
    for model, tensors in (("a", a), ("a", a2), ("b", b)):
        path = write_safetensors(tmp_path / "src" / model / "model.safetensors", tensors)
        import_paths(ws, [path], model)
    text = tmp_path / "src" / "text"
    text.mkdir()
    (text / "notes.txt").write_text("words " * 20_000)
    import_paths(ws, [text], "text")


def _figures(s: Stats) -> tuple[object, ...]:
    return (s.models, s.versions, s.logical_bytes, s.unique_bytes, s.stored_bytes, s.chunks,
            {k: (v.logical, v.stored) for k, v in s.by_model.items()},
            {k: (v.logical, v.stored) for k, v in s.by_version.items()},
            {k: (v.logical, v.stored) for k, v in s.by_dtype.items()})  # fmt: skip


def test_totals_are_what_reading_every_manifest_finds(ws: Workspace, tmp_path: Path) -> None:
    _populate(ws, tmp_path)
    set_policy(ws, "copies=2")
    read = stats(ws, list(ws.repo.iter_manifests()))
    t = ws.catalog.measure_stored()
    got = (t.models, t.versions, t.logical_bytes, t.unique_bytes, t.stored_bytes, t.chunks,
           t.by_model, t.by_version, t.by_dtype)  # fmt: skip
    assert got == _figures(read)
    assert (t.models, t.versions) == (3, 4)
    assert t.unique_bytes < t.logical_bytes  # a@1 and a@2 share chunks: counted once
    assert set(t.by_dtype) == {"F32", "other"}


def test_stored_bytes_are_unknown_until_measured_and_count_every_copy(
    ws: Workspace, tmp_path: Path
) -> None:
    _populate(ws, tmp_path)
    assert [m.stored_bytes for m in ws.catalog.models()] == [None, None, None]
    ws.catalog.measure_stored()
    one = {m.name: m.stored_bytes for m in ws.catalog.models()}
    read = stats(ws, list(ws.repo.iter_manifests()))
    assert one == {k: v.stored for k, v in read.by_model.items()}
    a1, a2 = read.by_version["a@1"].stored, read.by_version["a@2"].stored
    assert max(a1, a2) < (one["a"] or 0) < a1 + a2  # shared chunks once per model
    assert ws.catalog.models()[0].to_json()["stored_bytes"] == one["a"]

    set_policy(ws, "copies=2")  # every chunk gets a second copy on the other device
    # The conversion (a repair) forgot the kept figures: none is shown stale.
    assert {m.stored_bytes for m in ws.catalog.models()} == {None}
    ws.catalog.measure_stored()
    two = {m.name: m.stored_bytes for m in ws.catalog.models()}
    assert two == {k: 2 * (v or 0) for k, v in one.items()}
    assert ws.catalog.stored_bytes() == two

    # A new version of b: b's figure is unknown again (its new chunks were not measured),
    # the others' stay.
    path = write_safetensors(tmp_path / "b2" / "model.safetensors", {"x": np.zeros(999)})
    import_paths(ws, [path], "b")
    after = {m.name: m.stored_bytes for m in ws.catalog.models()}
    assert after == {**two, "b": None}
    assert "b" not in ws.catalog.stored_bytes()


def test_jobs_that_change_pieces_forget_the_kept_sizes(ws: Workspace, tmp_path: Path) -> None:
    """Recompress and forgetting a device change what models take on disk: the window's On
    disk column shows "…" until measured again, never the old figure."""
    _populate(ws, tmp_path)
    for change in (
        lambda: recompress(ws, "a@1", CodecSettings("raw")),
        lambda: remove_device(ws, "second", drain=False, force=True, allow_loss=True),
    ):
        ws.catalog.measure_stored()
        assert None not in {m.stored_bytes for m in ws.catalog.models()}
        change()
        assert ws.catalog.stored_bytes() == {}


def test_a_schema_5_catalog_is_rebuilt_with_the_index(ws: Workspace, tmp_path: Path) -> None:
    _populate(ws, tmp_path)
    expected = related(ws, "a@2").to_json()
    path = ws.catalog.path
    ws.close()
    with sqlite3.connect(path) as db:  # what schema 5 had: no index, no license column
        for table in ("tensor_digests", "version_chunks", "model_stored"):
            db.execute(f"DROP TABLE {table}")
        db.execute("ALTER TABLE versions DROP COLUMN license")
        db.execute("PRAGMA user_version=5")
    db.close()
    again = open_workspace(ws.repo.root)
    try:
        assert again.catalog.path == path
        assert related(again, "a@2").to_json() == expected
        assert expected["related"][0]["ref"] == "a@1"
        assert again.catalog.sharing("a", 2) is not None
    finally:
        again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        assert db.execute("SELECT COUNT(*) FROM version_chunks").fetchone()[0] > 0
    db.close()


def test_a_schema_6_catalog_gains_the_newest_index_in_place(ws: Workspace, tmp_path: Path) -> None:
    """Version 7 only adds an index: a version 6 file keeps its rows (no rebuild, which at
    10,000 models reads 50,000 manifests), and models() reads the newest version's figures."""
    _populate(ws, tmp_path)
    bigger = small_model(np.random.default_rng(5), n=6)  # a@3: more bytes than a@2
    import_paths(ws, [write_safetensors(tmp_path / "a3" / "model.safetensors", bigger)], "a")
    listed = [m.to_json() for m in ws.catalog.models()]
    path = ws.catalog.path
    ws.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX versions_newest")
        db.execute("INSERT INTO state(key, value) VALUES('kept', 'yes')")  # gone if rebuilt
        db.execute("PRAGMA user_version=6")
    db.close()
    open_workspace(ws.repo.root).close()
    with sqlite3.connect(path) as db:  # upgraded again, over an index already there
        db.execute("PRAGMA user_version=6")
    db.close()
    again = open_workspace(ws.repo.root)
    try:
        assert [m.to_json() for m in again.catalog.models()] == listed
        a = next(m for m in again.catalog.models() if m.name == "a")
        newest, before = again.catalog.versions("a")[:2]
        assert (a.versions, a.latest, a.updated) == (3, 3, newest.created)
        assert (a.logical_bytes, a.dtypes) == (newest.logical_bytes, newest.dtypes)
        assert a.logical_bytes > before.logical_bytes
    finally:
        again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
        assert db.execute("SELECT value FROM state WHERE key='kept'").fetchone() == ("yes",)
        plan = db.execute("EXPLAIN QUERY PLAN SELECT model, MAX(seq), dtypes FROM versions "
                          "INDEXED BY versions_newest GROUP BY model").fetchall()  # fmt: skip
        assert "COVERING INDEX versions_newest" in str(plan)
    db.close()


def test_stats_answers_from_the_index_without_reading_a_manifest(
    ws: Workspace, tmp_path: Path
) -> None:
    """Every manifest is zeroed in place (same size): the warm catalog's change record says
    nothing changed, so ``stats`` gives the same figures; reading the manifests cannot."""
    _populate(ws, tmp_path)
    read = _figures(stats(ws, list(ws.repo.iter_manifests())))
    assert _figures(stats(ws)) == read
    manifests = sorted(tmp_path.glob("**/versions/*.json"))  # main's and every device copy
    assert len(manifests) >= 8
    for path in manifests:
        path.write_bytes(b"\0" * path.stat().st_size)
    assert _figures(stats(ws)) == read
    with pytest.raises(ModelManagerError):
        stats(ws, list(ws.repo.iter_manifests()))


def test_a_version_row_made_from_its_manifest_equals_the_catalogs(
    ws: Workspace, tmp_path: Path
) -> None:
    """The catalog keeps a version's metadata as text, parsed when asked; the row ``show`` and
    remote listings make from a manifest holds the same text (keys sorted, as the catalog
    writes them), so the two rows and their JSON are equal, nested values included."""
    from modelmanager.core.catalog import VersionRow

    path = write_safetensors(tmp_path / "m.safetensors", {"w": np.ones((4, 4), np.float32)})
    import_paths(ws, [path], "m", labels=["prod"],
                 metadata={"zeta": 1, "alpha": {"b": [1, 2], "a": "x"}, "mid": "é"})  # fmt: skip
    (listed,) = ws.catalog.versions("m")
    made = VersionRow.of(ws.repo.read_manifest("m", 1), {"prod": 1})
    assert made == listed
    assert listed.metadata["alpha"] == {"b": [1, 2], "a": "x"}
    assert made.to_json() == listed.to_json()
    (found,) = ws.catalog.search("m")
    assert found.metadata == listed.metadata
    assert found.metadata_json == listed.metadata_json
