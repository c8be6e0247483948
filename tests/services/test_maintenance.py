"""Writer lock, verify against real damage, garbage collection, catalog as a rebuildable cache."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelmanager import paths
from modelmanager.core.catalog import Catalog, catalog_path
from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.repository import Repository
from modelmanager.errors import Cancelled, DoubtError, IntegrityError, LockedError
from modelmanager.services import Workspace, history, open_workspace
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage, plan_gc, reindex, stats, verify
from tests.conftest import TEST_CHUNK, subprocess_env
from tests.support.builders import small_model, tree_bytes, write_safetensors

HOLD_LOCK = """
import sys, time
from pathlib import Path
from modelmanager.core.repo.repository import Repository
repo = Repository.open(Path(sys.argv[1]))
with repo.writer():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@contextlib.contextmanager
def _holder(repo: Path, seconds: float, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the writer lock for ``seconds`` (killed on exit)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(repo), str(seconds)],
        stdout=subprocess.PIPE, text=True, env=subprocess_env(tmp_path),
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        try:
            yield proc
        finally:
            proc.kill()


def _model(tmp_path: Path, name: str = "m", seed: int = 0) -> Path:
    return write_safetensors(
        tmp_path / name / "model.safetensors", small_model(np.random.default_rng(seed))
    )


def test_second_writer_fails_clearly_while_readers_carry_on(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_model(tmp_path)], "m")
    with _holder(ws.repo.root, 30, tmp_path) as holder:
        with pytest.raises(LockedError) as info:
            import_paths(ws, [_model(tmp_path, "n", 1)], "n", lock_timeout=0.2)
        assert f"process {holder.pid}" in str(info.value)
        # Readers never take the lock.
        assert ws.repo.resolve("m").seq == 1
        export_ref(ws, "m", tmp_path / "out")
        assert verify(ws).ok
    # A killed holder leaves no stale lock: the OS released it with the process.
    import_paths(ws, [_model(tmp_path, "n", 1)], "n", lock_timeout=0.2)


def test_waiting_writer_proceeds_when_the_lock_is_released(ws: Workspace, tmp_path: Path) -> None:
    waits: list[str] = []
    with _holder(ws.repo.root, 0.5, tmp_path), ws.repo.writer(timeout=30, on_wait=waits.append):
        pass
    assert waits
    assert "waiting for the writer lock" in waits[0]


def test_verify_finds_each_kind_of_damage(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_model(tmp_path)], "m")
    m = ws.repo.resolve("m")
    ids = [c.id for c in m.files[0].chunks]
    assert verify(ws).ok
    (ws.repo.root / chunk_key(ids[1])).unlink()
    flipped = ws.repo.root / chunk_key(ids[2])
    blob = bytearray(flipped.read_bytes())
    blob[-1] ^= 0x10
    flipped.write_bytes(blob)
    report = verify(ws)
    kinds = {(p.kind, p.subject) for p in report.problems}
    assert kinds == {("missing", ids[1]), ("corrupt", ids[2])}
    assert all(p.versions == ("m@1",) for p in report.problems)
    quick = verify(ws, quick=True)
    assert {(p.kind, p.subject) for p in quick.problems} == {("missing", ids[1])}
    with pytest.raises(IntegrityError):
        export_ref(ws, "m", tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_verify_reports_a_damaged_manifest_and_a_dangling_label(
    ws: Workspace, tmp_path: Path
) -> None:
    import_paths(ws, [_model(tmp_path)], "m", labels=["prod"])
    import_paths(ws, [_model(tmp_path, "n", 1)], "m")
    (ws.repo.root / "models" / "m" / "versions" / "00000001.json").write_text("{broken")
    (ws.repo.root / "models" / "m" / "labels" / "prod.json").write_text('{"version": 7}')
    report = verify(ws)
    manifest = ws.repo.root / "models" / "m" / "versions" / "00000001.json"
    label = ws.repo.root / "models" / "m" / "labels" / "prod.json"
    assert {(p.kind, p.subject) for p in report.problems} == {
        ("manifest", "models/m/versions/00000001.json"),  # no intact copy: unreadable
        ("metadata", str(manifest)),  # each damaged record is named with its file
        ("metadata", str(label)),
    }
    with pytest.raises(DoubtError, match="fail their check"):
        plan_gc(ws)  # never delete chunks while a manifest cannot be read


def test_gc_deletes_only_unreferenced_chunks_and_shows_its_plan(
    ws: Workspace, tmp_path: Path
) -> None:
    import_paths(ws, [_model(tmp_path)], "m")
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(1).bytes(20 * TEST_CHUNK))
    ctx = JobContext()
    ctx.on_progress = lambda done, total, _t: ctx.cancel() if done > total // 2 else None
    with pytest.raises(Cancelled):
        import_paths(ws, [big], "big", ctx=ctx)
    before = stats(ws)
    (ws.repo.root / "chunks" / "00").mkdir(exist_ok=True)
    (ws.repo.root / "chunks" / "00" / ".tmp-dead-writer").write_bytes(b"x" * 10)
    dry = collect_garbage(ws, dry_run=True)
    assert dry.deleted_chunks == 0
    assert len(dry.plan.chunks) > 0
    assert stats(ws) == before
    result = collect_garbage(ws)
    assert result.deleted_chunks == len(dry.plan.chunks)
    assert result.freed_bytes == dry.plan.bytes
    after = stats(ws)
    assert before.stored_bytes - after.stored_bytes == sum(s for _c, s in dry.plan.chunks)
    assert not (ws.repo.root / "chunks" / "00" / ".tmp-dead-writer").exists()
    assert verify(ws).ok
    export_ref(ws, "m", tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "m")
    assert collect_garbage(ws).deleted_chunks == 0


def test_gc_waits_for_a_running_import(ws: Workspace, tmp_path: Path) -> None:
    """gc takes the writer lock, so an import's fresh chunks are never collected under it."""
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(2).bytes(60 * TEST_CHUNK))
    started = threading.Event()
    release = threading.Event()

    def slow(done: int, total: int, _text: str) -> None:
        if done > total // 3:
            started.set()
            release.wait(10)

    errors: list[BaseException] = []

    def run_import() -> None:
        try:
            import_paths(ws, [big], "big", ctx=JobContext(on_progress=slow))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=run_import)
    t.start()
    assert started.wait(10)
    other = open_workspace(ws.repo.root)
    with pytest.raises(LockedError):
        collect_garbage(other, lock_timeout=0.1)
    release.set()
    t.join()
    assert not errors
    assert collect_garbage(other).deleted_chunks == 0
    assert verify(other).ok
    other.close()


def test_catalog_is_rebuilt_when_missing_or_damaged(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_model(tmp_path)], "a", labels=["prod"], message="alpha")
    import_paths(ws, [_model(tmp_path, "b", 1)], "b")
    expected = history.list_models(ws)
    path = ws.catalog.path
    ws.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    again = open_workspace(ws.repo.root)
    assert history.list_models(again) == expected
    again.close()
    path.write_bytes(b"this is not a database" * 100)
    Path(f"{path}-wal").unlink(missing_ok=True)
    third = open_workspace(ws.repo.root)
    assert history.list_models(third) == expected
    assert [r.model for r in third.catalog.search("alpha")] == ["a"]
    assert reindex(third).added == 2
    assert history.list_models(third) == expected
    third.close()


def test_catalog_catches_up_with_versions_written_elsewhere(ws: Workspace, tmp_path: Path) -> None:
    """A crash between manifest and catalog row leaves the catalog behind: opening syncs it."""
    import_paths(ws, [_model(tmp_path)], "m", labels=["prod"])
    import sqlite3

    with contextlib.closing(sqlite3.connect(ws.catalog.path)) as db, db:
        db.execute("DELETE FROM versions")
        db.execute("DELETE FROM labels")
    assert history.list_models(ws) == []
    again = open_workspace(ws.repo.root)
    assert [(r.name, r.labels) for r in history.list_models(again)] == [("m", {"prod": 1})]
    again.close()


def test_catalog_lives_in_the_cache_not_in_the_repository(ws: Workspace) -> None:
    assert ws.catalog.path == catalog_path(paths.cache_dir(), ws.repo)
    assert not str(ws.catalog.path).startswith(str(ws.repo.root))


def test_default_repository_is_created_on_first_use() -> None:
    ws = open_workspace()
    assert ws.repo.root == paths.default_repo_path()
    assert (ws.repo.root / "config.json").exists()
    ws.close()
    assert open_workspace().repo.config.id == ws.repo.config.id


def test_stats_counts_logical_unique_and_stored(ws: Workspace, tmp_path: Path) -> None:
    src = _model(tmp_path)
    import_paths(ws, [src], "m")
    import_paths(ws, [src], "m")  # the same bytes again: no new chunks
    s = stats(ws)
    size = src.stat().st_size
    assert (s.models, s.versions, s.logical_bytes, s.unique_bytes) == (1, 2, 2 * size, size)
    on_disk = sum(p.stat().st_size for p in (ws.repo.root / "chunks").rglob("*") if p.is_file())
    assert s.stored_bytes == on_disk


def test_lock_of_a_killed_writer_is_free_at_once(tmp_path: Path, ws: Workspace) -> None:
    with _holder(ws.repo.root, 60, tmp_path) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    repo = Repository.open(ws.repo.root)
    with repo.writer(timeout=0.1):
        assert repo.lock.held


def test_two_catalogs_for_two_folders_with_one_id(ws: Workspace, tmp_path: Path) -> None:
    """A copied repository keeps its id; its catalog must still describe its own folder."""
    import shutil

    import_paths(ws, [_model(tmp_path)], "m")
    shutil.copytree(ws.repo.root, tmp_path / "copy")
    copy = open_workspace(tmp_path / "copy")
    import_paths(copy, [_model(tmp_path, "n", 1)], "n")
    assert [r.name for r in history.list_models(copy)] == ["m", "n"]
    assert [r.name for r in history.list_models(ws)] == ["m"]
    assert Catalog.open(paths.cache_dir(), ws.repo).sync().added == 0
    copy.close()


def test_two_threads_of_one_program_never_write_at_once(ws: Workspace, tmp_path: Path) -> None:
    """The GUI runs jobs on threads sharing one Repository: the lock must serialize them."""
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with ws.repo.writer(timeout=5):
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(10)
    try:
        with pytest.raises(LockedError, match="another job of this program"), ws.repo.writer(0.2):
            pass
        assert not ws.repo.lock.held  # held by the other thread, not by this one
    finally:
        leave.set()
        t.join()
    with ws.repo.writer(timeout=1), ws.repo.writer(timeout=0):  # re-entrant in one thread
        assert ws.repo.lock.held
    assert not ws.repo.lock.held
    import_paths(ws, [_model(tmp_path)], "m")  # and writes work afterwards
