"""gc, repair and rebalance streamed in bounded batches find and do what the whole-list
algorithms did, on a real three-device repository with real damage (issue 18)."""

from __future__ import annotations

import os
import shutil
import threading
import weakref
from functools import partial
from pathlib import Path

import pytest

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.jobs import default_workers
from modelmanager.core.redundancy import health, moves, table
from modelmanager.core.redundancy.plans import to_repair
from modelmanager.errors import UserError
from modelmanager.services import Workspace, init_repository, redundancy
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage, plan_gc, verify
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import plan_moves, preview_moves, rebalance, repair, scrub
from modelmanager.services.redundancy import survey as full_survey

CHUNK = 4096


def _repo(tmp_path: Path) -> tuple[Workspace, dict[str, Path], dict[str, bytes]]:
    """Main offline, three devices, copies=2, two versions of ``m`` sharing half their chunks."""
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=CHUNK)
    set_device(ws, "main", state="offline")
    roots = {f"d{i}": tmp_path / f"dev{i}" for i in range(3)}
    for name, root in roots.items():
        add_device(ws, root, name=name)
    set_policy(ws, "copies=2")
    first = os.urandom(40 * CHUNK)
    sources = {"m@1": first, "m@2": first[: 20 * CHUNK] + os.urandom(20 * CHUNK)}
    for ref, data in sources.items():
        path = tmp_path / "src" / ref.replace("@", "") / "weights.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        import_paths(ws, [path], "m")
    return ws, roots, sources


def _orphans(tmp_path: Path, root: Path, n: int) -> set[str]:
    """``n`` real chunk objects no version of this repository uses, written onto ``root``."""
    other = init_repository(tmp_path / "other", chunk_size=CHUNK, group_size=CHUNK)
    data = tmp_path / "orphan.bin"
    data.write_bytes(os.urandom(n * CHUNK))
    ids = {c.id for f in import_paths(other, [data], "x").manifest.files for c in f.chunks}
    for cid in ids:
        dest = root / chunk_key(cid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(other.repo.root / chunk_key(cid), dest)
    return ids


def _copies(ws: Workspace, cid: str) -> dict[str, Path]:
    return {d.name: p for d, p in ws.repo.chunks.piece_files(cid)}


def test_streamed_gc_repair_and_rebalance_match_the_whole_list_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, roots, sources = _repo(tmp_path)
    v2 = ws.repo.resolve("m@2")
    ids = [c.id for c in v2.files[0].chunks]  # 0-19 shared with m@1, 20-39 only in m@2

    # gc: the planted orphans, and exactly what the set-of-every-id algorithm finds.
    orphans = _orphans(tmp_path, roots["d0"], 5)
    referenced = set().union(*(m.chunk_ids() for m in ws.repo.iter_manifests()))
    stored = dict(ws.repo.chunks.iter_stored())
    expected = tuple(sorted((c, s) for c, s in stored.items() if c not in referenced))
    plan = plan_gc(ws)
    assert plan.chunks == expected
    assert {c for c, _s in plan.chunks} == orphans
    assert collect_garbage(ws).deleted_chunks == 5
    assert plan_gc(ws).chunks == ()

    # Damage: a copy missing, a copy corrupt, a surplus third copy, a chunk lost entirely.
    missing, corrupt, surplus, lost = ids[1], ids[5], ids[25], ids[30]
    next(iter(_copies(ws, missing).values())).unlink()
    path = next(iter(_copies(ws, corrupt).values()))
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    holders = _copies(ws, surplus)
    spare = next(name for name in roots if name not in holders)
    extra = roots[spare] / chunk_key(surplus)
    extra.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(next(iter(holders.values())), extra)
    for p in _copies(ws, lost).values():
        p.unlink()

    # What the whole-list repair acted on (every record kept, then filtered).
    todo = to_repair(ws.repo.chunks, full_survey(ws))
    assert {h.chunk_id for h in todo} == {missing, corrupt, surplus, lost}
    monkeypatch.setattr(redundancy, "REPAIR_BATCH", 1)  # four batches of one
    report = repair(ws)
    assert (report.repaired_chunks, report.written_pieces, report.removed_pieces) == (3, 2, 2)
    assert [(x.chunk, x.versions) for x in report.lost] == [(lost, ("m@2",))]
    assert report.failed == ()
    for cid in (missing, corrupt, surplus):
        assert len(_copies(ws, cid)) == 2
    after = scrub(ws)
    assert [x.chunk for x in after.lost] == [lost]
    assert after.missing
    assert {x.chunk for x in after.missing} == {lost}
    assert not after.corrupt
    export_ref(ws, "m@1", tmp_path / "out")
    assert (tmp_path / "out" / "weights.bin").read_bytes() == sources["m@1"]

    # Rebalance onto a new device: the streamed moves, two per batch, are the planned ones.
    add_device(ws, tmp_path / "dev3", name="d3")
    planned = plan_moves(ws.repo.chunks)
    assert planned.moves
    monkeypatch.setattr(redundancy, "stream_moves", partial(moves.stream_moves, batch=2))
    done = rebalance(ws)
    assert (done.moved_pieces, done.moved_bytes, done.failed) == (
        len(planned.moves),
        planned.bytes,
        (),
    )
    for move in planned.moves:
        assert move.dest.name in _copies(ws, move.piece.chunk_id)
        assert move.piece.device.name not in _copies(ws, move.piece.chunk_id)
    assert preview_moves(ws).moves == ()
    assert scrub(ws).chunks == 60


def test_repair_holds_a_window_and_a_batch_of_chunk_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=CHUNK)
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(300 * CHUNK))
    ids = {c.id for f in import_paths(ws, [data], "m").manifest.files for c in f.chunks}
    add_device(ws, tmp_path / "dev1", name="d1")
    for cid in ids:  # a surplus second copy of every chunk (the policy is copies=1)
        dest = tmp_path / "dev1" / chunk_key(cid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ws.repo.root / chunk_key(cid), dest)

    alive: set[int] = set()
    lock = threading.Lock()
    most = 0

    class Counted(health.ChunkHealth):
        """A chunk record that counts itself alive until it is freed."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            nonlocal most
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            key = id(self)
            with lock:
                alive.add(key)
                most = max(most, len(alive))
            weakref.finalize(self, alive.discard, key)

    monkeypatch.setattr(health, "ChunkHealth", Counted)
    monkeypatch.setattr(redundancy, "REPAIR_BATCH", 8)
    report = repair(ws)
    assert (report.repaired_chunks, report.removed_pieces) == (300, 300)
    assert {len(_copies(ws, cid)) for cid in ids} == {1}
    # The survey's window, one batch (each record and its re-check), and the one in hand.
    assert 0 < most <= 2 * default_workers() + 2 * 8 + 2


def test_a_temporary_list_that_cannot_grow_is_one_line_naming_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=CHUNK)
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(300 * CHUNK))
    import_paths(ws, [data], "m")
    real = table.ChunkTable.__init__

    def full(self: table.ChunkTable) -> None:  # as a temporary folder with no room left
        real(self)
        self.db.execute("PRAGMA max_page_count=1")

    monkeypatch.setattr(table.ChunkTable, "__init__", full)
    for run in (lambda: verify(ws), lambda: scrub(ws), lambda: plan_gc(ws), lambda: repair(ws)):
        with pytest.raises(UserError, match=r"cannot keep the temporary list of chunks .*full"):
            run()
    monkeypatch.setattr(table.ChunkTable, "__init__", real)
    assert verify(ws).ok
