"""Devices and redundancy on real folders, with faults injected for real."""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import IDENTITY_FILE
from modelmanager.core.storage import LocalBlobStore, StoreFactory
from modelmanager.errors import Cancelled, IntegrityError, UserError
from modelmanager.services import Workspace, init_repository
from modelmanager.services.devices import add_device, list_devices, remove_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import stats, verify
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import rebalance, repair, scrub
from tests.support.builders import random_weights, tree_bytes, write_safetensors
from tests.support.faulty import READS, FaultyFolders

CHUNK = 16 * 1024
DiskUsage = collections.namedtuple("DiskUsage", "total used free")


def _model(folder: Path, seed: int = 0, tensors: int = 12) -> Path:
    rng = np.random.default_rng(seed)
    data = {f"t{i}": random_weights(rng, (2 * CHUNK // 4,)) for i in range(tensors)}
    write_safetensors(folder / "model.safetensors", data)
    (folder / "config.json").write_text('{"architectures": ["Tiny"]}')
    return folder


def _repo_without_main(tmp_path: Path, blob_stores: StoreFactory = LocalBlobStore) -> Workspace:
    """A repository whose own folder (device main) takes no pieces: the devices added do."""
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024,
                         blob_stores=blob_stores)  # fmt: skip
    set_device(ws, "main", state="offline")
    return ws


def make_cluster(
    tmp_path: Path, n: int, policy: str, tensors: int = 12,
    blob_stores: StoreFactory = LocalBlobStore,
) -> tuple[Workspace, list[Path]]:  # fmt: skip
    """A repository whose pieces live only on ``n`` device folders (main is kept offline)."""
    ws = _repo_without_main(tmp_path, blob_stores)
    roots = []
    for i in range(n):
        root = tmp_path / f"dev{i}"
        add_device(ws, root, name=f"d{i}")
        roots.append(root)
    set_policy(ws, policy)
    import_paths(ws, [_model(tmp_path / "src", tensors=tensors)], "m")
    return ws, roots


def _pieces_under(root: Path) -> set[tuple[str, str]]:
    """(chunk id, piece description) of every piece file in a device folder."""
    found = set()
    for p in root.rglob("*"):
        if not p.is_file() or p.name == IDENTITY_FILE or p.name.startswith(".tmp-"):
            continue
        if p.relative_to(root).parts[0] == "meta":  # metadata replicas, not chunk pieces
            continue
        cid, _, index = p.name.partition(".")
        if "fragments" in p.parts:
            k, m = p.parent.parent.name.split("+")
            found.add((cid, f"fragment {index} of {k}+{m}"))
        else:
            found.add((cid, "copy"))
    return found


def _export_is_exact(ws: Workspace, tmp_path: Path, name: str) -> int:
    result = export_ref(ws, "m", tmp_path / name, force=True)
    assert tree_bytes(tmp_path / name) == tree_bytes(tmp_path / "src")
    return result.degraded_chunks


@pytest.mark.parametrize("lost", list(itertools.combinations(range(6), 2)))
def test_ec_4_2_export_is_exact_after_any_two_devices_lost(
    tmp_path: Path, lost: tuple[int, int]
) -> None:
    ws, roots = make_cluster(tmp_path, 6, "ec=4+2")
    assert scrub(ws).ok
    gone = set()
    for i in lost:
        gone |= {(cid, what, f"d{i}") for cid, what in _pieces_under(roots[i])}
        shutil.rmtree(roots[i])
    ws.repo.reload_layout()
    assert _export_is_exact(ws, tmp_path, "out") > 0
    report = scrub(ws)
    assert not report.ok
    assert {(x.chunk, x.piece, x.device) for x in report.missing} == gone
    assert set(report.by("device")) == {f"d{i}" for i in lost}
    assert report.lost == ()
    for j in range(2):
        add_device(ws, tmp_path / f"new{j}", name=f"n{j}")
    fixed = repair(ws)
    assert fixed.ok
    assert scrub(ws).ok
    assert _export_is_exact(ws, tmp_path, "again") == 0


@pytest.mark.parametrize("lost", range(4))
def test_copies_2_survive_any_one_device_lost(tmp_path: Path, lost: int) -> None:
    ws, roots = make_cluster(tmp_path, 4, "copies=2")
    expected = {(cid, what, f"d{lost}") for cid, what in _pieces_under(roots[lost])}
    shutil.rmtree(roots[lost])
    ws.repo.reload_layout()
    _export_is_exact(ws, tmp_path, "out")
    report = scrub(ws)
    assert {(x.chunk, x.piece, x.device) for x in report.missing} == expected
    assert repair(ws).ok  # three devices remain: room for two copies of everything
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "again")


def test_100_bit_flips_are_all_detected_and_repaired_where_redundancy_allows(
    tmp_path: Path,
) -> None:
    ws, roots = make_cluster(tmp_path, 6, "ec=4+2", tensors=30)
    files = sorted(p for r in roots for p in r.rglob("*") if p.is_file() and "fragments" in p.parts)
    assert len(files) > 300
    rng = random.Random(100)
    victims = rng.sample(files, 100)
    per_chunk: dict[str, int] = {}
    for path in victims:
        blob = bytearray(path.read_bytes())
        bit = rng.randrange(len(blob) * 8)
        blob[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(blob))
        cid = path.name.partition(".")[0]
        per_chunk[cid] = per_chunk.get(cid, 0) + 1
    report = scrub(ws)
    assert {Path(x.piece).name for x in report.corrupt} == {p.name for p in victims}
    hopeless = {cid for cid, n in per_chunk.items() if n > 2}
    assert {x.chunk for x in report.lost} == hopeless
    # Reads never return corrupt bytes: every chunk reads exactly or fails clearly.
    if hopeless:
        with pytest.raises(IntegrityError):
            export_ref(ws, "m", tmp_path / "out")
    else:
        _export_is_exact(ws, tmp_path, "out")
    result = repair(ws)
    assert {x.chunk for x in result.lost} == hopeless
    after = scrub(ws)
    # Every chunk redundancy could save is whole again; the lost ones are left exactly as they
    # were (nothing invented, nothing deleted) for a person to salvage.
    assert {x.chunk for x in after.corrupt} == hopeless
    assert {x.chunk for x in after.under_replicated} == hopeless
    assert len(after.corrupt) == sum(per_chunk[c] for c in hopeless)


def test_truncated_piece_and_a_folder_in_place_of_a_piece(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 3, "copies=2")
    files = sorted(p for r in roots for p in r.rglob("*") if p.is_file() and "chunks" in p.parts)
    truncated, replaced = files[0], files[5]
    truncated.write_bytes(truncated.read_bytes()[:7])
    replaced.unlink()
    replaced.mkdir()
    report = scrub(ws)
    assert [Path(x.piece).name for x in report.corrupt] == [truncated.name]
    assert "truncated" in report.corrupt[0].detail
    # A folder is not a piece: that copy counts as missing.
    assert replaced.name in {x.chunk for x in report.missing}
    _export_is_exact(ws, tmp_path, "out")
    assert repair(ws).ok
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "again")


def _can_mount() -> bool:
    probe = Path("/tmp") / f"mm-mount-probe-{random.randrange(1 << 30)}"
    probe.mkdir()
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True, check=False).returncode == 0  # fmt: skip
    except FileNotFoundError:
        ok = False
    if ok:
        subprocess.run(["umount", str(probe)], check=True)
    probe.rmdir()
    return ok


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs permission to mount (root)")


@contextlib.contextmanager
def mounted(*args: str) -> Iterator[None]:
    subprocess.run(["mount", *args], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", args[-1]], check=True)


@contextlib.contextmanager
def tmpfs_device(ws: Workspace, folder: Path, size: str, name: str) -> Iterator[Path]:
    """A device on a tmpfs of ``size`` mounted at ``folder``: a real disk that really fills."""
    folder.mkdir()
    with mounted("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)):
        add_device(ws, folder, name=name)
        yield folder


def small_device(ws: Workspace, faults: FaultyFolders, folder: Path, size: int, name: str) -> Path:
    """A device of ``size`` bytes: its store says so, and refuses a write past it (ENOSPC)."""
    faults[folder].limit_space(size)
    add_device(ws, folder, name=name)
    return folder


def _full_device_is_skipped(ws: Workspace, tmp_path: Path) -> None:
    for i in range(2):
        add_device(ws, tmp_path / f"big{i}", name=f"big{i}")
    set_policy(ws, "copies=2")
    src = _model(tmp_path / "src", tensors=40)  # ~1.3 MB: cannot fit on the 256 KiB device
    import_paths(ws, [src], "m")
    report = scrub(ws)
    assert (report.missing, report.corrupt, report.under_replicated) == ((), (), ())
    # Once its chunks fill it, the tiny device has no room left for its metadata copy either:
    # scrub says so (the records themselves are intact on main and the other devices).
    assert all("the copy on tiny" in m for m in report.metadata), report.metadata
    tiny = next(i for i in list_devices(ws) if i.device.name == "tiny")
    assert 0 < tiny.used < 256 * 1024
    before = stats(ws)
    set_policy(ws, "copies=1")  # shrink to free room (surplus copies removed)
    with pytest.raises(UserError, match="needs 4 devices"):
        set_policy(ws, "copies=4")
    assert str(ws.repo.policies.default) == "copies=1"  # refused up front: nothing changed
    assert stats(ws).stored_bytes < before.stored_bytes
    _export_is_exact(ws, tmp_path, "out")


def test_full_device_is_skipped_and_a_policy_it_breaks_is_refused_up_front(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws = _repo_without_main(tmp_path, faults)
    small_device(ws, faults, tmp_path / "small", 256 * 1024, "tiny")
    _full_device_is_skipped(ws, tmp_path)


@needs_mount
def test_full_real_disk_is_skipped_and_a_policy_it_breaks_is_refused_up_front(
    tmp_path: Path,
) -> None:
    ws = _repo_without_main(tmp_path)
    with tmpfs_device(ws, tmp_path / "small", "256k", "tiny"):
        _full_device_is_skipped(ws, tmp_path)


def test_a_device_that_says_it_has_room_but_is_full_is_skipped(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws, roots = make_cluster(tmp_path, 3, "copies=2", blob_stores=faults)
    before = _pieces_under(roots[0])
    faults[roots[0]].fail(errno.ENOSPC, op="put", key="chunks")  # free space reads wrong
    result = import_paths(ws, [_model(tmp_path / "new", seed=5)], "n")
    assert result.device_problems == {"d0": "full"}
    assert faults[roots[0]].count("fail", "put") >= 1  # tried, then skipped for the job
    assert _pieces_under(roots[0]) == before
    assert scrub(ws).ok  # every new chunk has its two copies, on d1 and d2
    _export_is_exact(ws, tmp_path, "out")


def test_read_only_device_is_reported_and_nothing_stored_is_lost(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws, roots = make_cluster(tmp_path, 3, "copies=2", blob_stores=faults)
    victim = next(p for p in roots[1].rglob("*") if p.is_file() and "chunks" in p.parts)
    victim.unlink()  # lost before its disk went read-only (as ext4 does after errors)
    faults[roots[1]].fail(errno.EROFS, op=("put", "delete"))
    _export_is_exact(ws, tmp_path, "out")  # reading from it still works
    # Placement wants the lost copy back on d1 most (it ranked in the chunk's top two): the
    # write is refused there, so it goes to the next device.
    result = repair(ws)  # must not fail because one device refuses writes
    assert result.ok
    assert result.device_problems == {"d1": "Read-only file system"}
    assert faults[roots[1]].fired == [("fail", "put", chunk_key(victim.name))]
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "again")
    assert verify(ws).ok


def test_device_removed_in_the_middle_of_a_rebalance(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 3, "copies=2", tensors=30)
    add_device(ws, tmp_path / "extra", name="extra")
    ctx = JobContext()
    pulled: list[set[str]] = []  # the chunks the disk held when it went

    def pull_a_disk(done: int, total: int, _text: str) -> None:
        if done > total // 3 and not pulled:
            pulled.append({cid for cid, _what in _pieces_under(roots[2])})
            shutil.rmtree(roots[2])  # the disk goes away under the running job

    ctx.on_progress = pull_a_disk
    result = rebalance(ws, ctx=ctx)
    assert pulled
    assert result.moved_pieces > 0
    assert result.failed  # moves off the pulled disk fail, and say so
    ws.repo.reload_layout()
    _export_is_exact(ws, tmp_path, "out")  # copies=2: one disk gone, nothing lost
    report = scrub(ws)
    # Missing: exactly one copy of each chunk the pulled disk held, and nothing else.
    assert sorted(x.chunk for x in report.missing) == sorted(pulled[0])
    assert report.lost == ()
    assert repair(ws).ok
    assert scrub(ws).ok


def test_adding_a_seventh_device_and_rebalancing_moves_about_a_seventh(tmp_path: Path) -> None:
    # Device ids are random, so the share that moves is a random variable: with n chunks its
    # spread is sqrt(6/n) of the mean. 1,400 chunks put the 1.3x bound about 4.6 sigma out.
    ws = init_repository(tmp_path / "repo", chunk_size=4096, group_size=1024)
    set_device(ws, "main", state="offline")
    for i in range(6):
        add_device(ws, tmp_path / f"dev{i}", name=f"d{i}")
    rng = np.random.default_rng(7)
    src = tmp_path / "src"
    write_safetensors(src / "model.safetensors",
                      {f"t{i}": random_weights(rng, (1024,)) for i in range(1400)})  # fmt: skip
    (src / "config.json").write_text("{}")
    import_paths(ws, [src], "m")
    total = stats(ws).stored_bytes
    add_device(ws, tmp_path / "dev6", name="d6")
    result = rebalance(ws)
    assert result.moved_bytes <= 1.3 * total / 7, (result.moved_bytes, total)
    assert result.moved_bytes > 0.5 * total / 7
    assert rebalance(ws).moved_pieces == 0  # already where placement wants it
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "out")


def test_drain_moves_everything_off_before_removing(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 4, "copies=2")
    result = remove_device(ws, "d1", drain=True, force=False)
    assert result.drained_pieces > 0
    assert [d.name for d in ws.repo.devices.devices] == ["main", "d0", "d2", "d3"]
    assert _pieces_under(roots[1]) == set()
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "out")


def test_force_removal_counts_pieces_missing_until_repaired(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 4, "copies=2")
    shutil.rmtree(roots[3])
    with pytest.raises(UserError, match="use --force"):
        remove_device(ws, "d3", drain=True, force=False)
    remove_device(ws, "d3", drain=False, force=True)
    assert not scrub(ws).ok
    assert repair(ws).ok
    assert scrub(ws).ok


def test_policy_change_converts_copies_to_erasure_coding(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 6, "copies=1")
    before = stats(ws).stored_bytes
    report = set_policy(ws, "ec=4+2").report
    assert report.ok
    assert all("fragment" in what for r in roots for _c, what in _pieces_under(r))
    assert scrub(ws).ok
    assert stats(ws).stored_bytes == pytest.approx(before * 1.5, rel=0.05)
    _export_is_exact(ws, tmp_path, "out")


def test_not_enough_devices_refuses_the_import_and_names_why(tmp_path: Path) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    add_device(ws, tmp_path / "a", name="a")
    set_device(ws, "a", state="offline")
    with pytest.raises(UserError, match="a is offline"):
        set_policy(ws, "copies=2")
    assert str(ws.repo.policies.default) == "copies=1"
    set_device(ws, "a", state="online")
    set_policy(ws, "copies=2")
    set_device(ws, "a", state="offline")
    with pytest.raises(UserError, match=r"needs 2 devices.*a is offline"):
        import_paths(ws, [_model(tmp_path / "src")], "m")
    assert ws.repo.model_names() == []


def test_device_identity_foreign_folders_and_remounts(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 2, "copies=2")
    full = tmp_path / "someones-photos"
    full.mkdir()
    (full / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(UserError, match="not empty and is not a ModelManager device"):
        add_device(ws, full)
    other = init_repository(tmp_path / "other")
    with pytest.raises(UserError, match="another repository"):
        add_device(other, roots[0])
    # The disk is remounted elsewhere: it is recognised by its identity file.
    moved = tmp_path / "remounted"
    shutil.move(roots[1], moved)
    ws.repo.reload_layout()
    added = add_device(ws, moved)
    device, recognised = added.device, added.recognised
    assert recognised
    assert device.name == "d1"
    assert scrub(ws).ok
    with pytest.raises(UserError, match="already exists"):
        add_device(ws, tmp_path / "fresh", name="d0")


def test_scrub_and_repair_can_be_cancelled_and_run_again(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 3, "copies=2")
    shutil.rmtree(roots[0])
    ws.repo.reload_layout()
    ctx = JobContext()
    ctx.on_progress = lambda done, total, _t: ctx.cancel()
    with pytest.raises(Cancelled):
        scrub(ws, ctx=ctx)
    ctx2 = JobContext()
    ctx2.on_progress = lambda done, total, _t: ctx2.cancel()
    with pytest.raises(Cancelled):
        repair(ws, ctx=ctx2)
    assert repair(ws).ok
    assert scrub(ws).ok


def test_device_ls_reports_capacity_usage_and_state(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 2, "copies=2")
    infos = {i.device.name: i for i in list_devices(ws)}
    assert infos["main"].status == "offline"
    assert infos["d0"].status == infos["d1"].status == "online"
    assert infos["d0"].chunks == infos["d1"].chunks > 0
    assert infos["d0"].capacity is not None
    assert infos["d0"].used == sum(p.stat().st_size for p in roots[0].rglob("*")
                                   if p.is_file() and p.name != IDENTITY_FILE
                                   and "meta" not in p.relative_to(roots[0]).parts)  # fmt: skip
    shutil.rmtree(roots[1])
    ws.repo.reload_layout()
    assert {i.device.name: i.status for i in list_devices(ws)}["d1"] == "missing"


def test_a_stuck_device_does_not_stall_reads_from_the_others(tmp_path: Path) -> None:
    """Every read from one device blocks; all other chunks must still arrive meanwhile."""
    import threading

    faults = FaultyFolders()
    ws, roots = make_cluster(tmp_path, 3, "copies=1", tensors=20, blob_stores=faults)
    (tmp_path / "src" / "config.json").unlink()  # one file: files are exported one by one
    import_paths(ws, [tmp_path / "src"], "m")
    chunks = ws.repo.chunks
    stuck = ws.repo.devices.get("d1")
    manifest = ws.repo.resolve("m")
    on_stuck = sum(
        c.length for f in manifest.files for c in f.chunks
        if (chunks.preferred_device(c.id) or stuck).id == stuck.id
    )  # fmt: skip
    assert 0 < on_stuck < manifest.logical_bytes
    release = threading.Event()
    others_done = threading.Event()
    faults[roots[1]].block(release, op=READS)  # d1: every read hangs until released

    def progress(done: int, total: int, _text: str) -> None:
        if done >= total - on_stuck:
            others_done.set()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            export_ref(ws, "m", tmp_path / "out", ctx=JobContext(on_progress=progress))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert others_done.wait(30), "reads from healthy devices waited for the stuck one"
    finally:
        release.set()
        t.join()
    assert not errors
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "src")


def test_a_drain_that_cannot_fit_is_refused_up_front_and_previewed(tmp_path: Path) -> None:
    from modelmanager.services.redundancy import preview_moves

    faults = FaultyFolders()
    ws = _repo_without_main(tmp_path, faults)
    add_device(ws, tmp_path / "big", name="big")
    small_device(ws, faults, tmp_path / "small", 256 * 1024, "tiny")
    import_paths(ws, [_model(tmp_path / "src", tensors=40)], "m")  # ~1.3 MB, mostly on big
    before = _pieces_under(tmp_path / "big")
    plan = preview_moves(ws, draining="big")
    assert plan.stuck  # the 256 KiB device cannot take it all
    assert plan.onto().get("tiny", 0) <= 256 * 1024  # planned against its free space
    with pytest.raises(UserError, match=r"cannot drain big: \d+ of its pieces .* fit on no"):
        remove_device(ws, "big", drain=True, force=False)
    assert _pieces_under(tmp_path / "big") == before  # refused before anything moved
    assert [(d.name, d.state) for d in ws.repo.devices.devices][1] == ("big", "online")
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "out")


def test_rebalance_and_drain_previews_change_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.test_cli import Cli

    ws, roots = make_cluster(tmp_path, 3, "copies=1")
    add_device(ws, tmp_path / "new", name="new", weight=3)
    before = [_pieces_under(r) for r in [*roots, tmp_path / "new"]]
    cli = Cli(ws.repo.root, capsys)
    plan = cli.json("rebalance", "--dry-run")
    assert plan["pieces"] > 0
    assert set(plan["onto"]) == {"new"}
    out, _ = cli("device", "rm", "d1", "--drain", "--dry-run")
    assert "Draining d1 would move" in out
    assert "Nothing was changed" in out
    out, err = cli("device", "rm", "d1", "--force", "--dry-run", code=1)  # copies=1: a loss
    assert "Removing device d1 (holds" in out
    assert "would be refused without --allow-loss" in err
    assert [_pieces_under(r) for r in [*roots, tmp_path / "new"]] == before
    assert [d.name for d in ws.repo.devices.devices] == ["main", "d0", "d1", "d2", "new"]
    moved = rebalance(ws)
    assert moved.moved_pieces == plan["pieces"]


def test_imports_and_pulls_that_cannot_fit_are_refused_before_writing(tmp_path: Path) -> None:
    from modelmanager.services.remotes import RemoteSpec, open_remote, pull, push

    faults = FaultyFolders()
    ws = _repo_without_main(tmp_path, faults)
    disk = small_device(ws, faults, tmp_path / "disk", 2 << 20, "small")
    a = _model(tmp_path / "a", seed=1, tensors=40)  # ~1.3 MB of random weights
    import_paths(ws, [a], "a")
    # The same weights again: their sizes exceed the room left, but nothing is new.
    again = import_paths(ws, [a], "copy-of-a")
    assert again.new_chunks == 0
    before = _pieces_under(disk)
    other = _model(tmp_path / "b", seed=2, tensors=40)
    with pytest.raises(UserError, match=r"not enough space for this import .*\(small \d"):
        import_paths(ws, [other], "b")
    assert _pieces_under(disk) == before  # refused before a chunk was written
    assert ws.repo.version_numbers("b") == []

    # A pull of the same new weights from a shared folder is refused the same way.
    big = init_repository(tmp_path / "big", chunk_size=CHUNK, group_size=1024)
    import_paths(big, [other], "b")
    shared = RemoteSpec("shared", f"file://{tmp_path / 'shared'}")
    push(big, "b@1", open_remote(shared))
    with pytest.raises(UserError, match="not enough space for pulling b@1"):
        pull(ws, open_remote(shared), "b@1")
    assert _pieces_under(disk) == before
    assert ws.repo.version_numbers("b") == []
    big.close()
    assert scrub(ws).ok


def test_a_repair_that_cannot_fit_is_refused_before_writing(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws = _repo_without_main(tmp_path, faults)
    small_device(ws, faults, tmp_path / "one", 2 << 20, "one")
    two = small_device(ws, faults, tmp_path / "two", 2 << 20, "two")
    set_policy(ws, "copies=2")
    import_paths(ws, [_model(tmp_path / "src", tensors=40)], "m")  # ~1.3 MB, on both
    lost = _pieces_under(two)
    for piece in (two / "chunks").iterdir():
        shutil.rmtree(piece)  # the second copy of every chunk is gone
    filler = two / "other-files.bin"
    filler.write_bytes(b"\0" * (1900 * 1024))  # and the disk filled up meanwhile
    assert len(scrub(ws).missing) == len(lost)
    with pytest.raises(UserError, match=r"not enough space for repairing \d+ chunks: it ne"):
        repair(ws)
    assert _pieces_under(two / "chunks") == set()  # refused before a piece was written
    filler.unlink()
    report = repair(ws)
    assert report.ok
    assert report.written_pieces == len(lost)
    assert _pieces_under(two) == lost
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "out")


def test_devices_on_one_file_system_count_its_free_space_once(tmp_path: Path) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    for name in ("a", "b"):
        add_device(ws, tmp_path / name, name=name)
    chunks = ws.repo.chunks
    main = next(d for d in chunks.devices.devices if d.name == "main")
    total, summary = chunks.room()
    free = chunks.usable(main)
    assert free is not None
    assert total is not None
    assert abs(total - free) < 64 * 1024 * 1024  # once, not three times (others write meanwhile)
    assert summary.count(" ") >= 5
    assert "a " in summary
    assert "b " in summary
    ws.close()


def test_a_policy_change_is_previewed_with_what_it_writes_and_removes(tmp_path: Path) -> None:
    from modelmanager.services.policies import preview_policy

    ws, roots = make_cluster(tmp_path, 3, "copies=1")
    before = [_pieces_under(r) for r in roots]
    grow = preview_policy(ws, "copies=2")
    assert [_pieces_under(r) for r in roots] == before  # a preview changes nothing
    assert str(ws.repo.policies.default) == "copies=1"
    pieces = sum(len(b) for b in before)
    assert (grow.write_pieces, grow.remove_pieces, grow.chunks) == (pieces, 0, pieces)
    report = set_policy(ws, "copies=2").report
    assert (report.written_pieces, report.written_bytes) == (grow.write_pieces, grow.write_bytes)

    shrink = preview_policy(ws, "copies=1")
    assert (shrink.write_pieces, shrink.remove_pieces, shrink.tolerates) == (0, pieces, 0)
    stored = stats(ws).stored_bytes
    report = set_policy(ws, "copies=1").report
    assert report.removed_pieces == shrink.remove_pieces
    assert stored - stats(ws).stored_bytes == shrink.remove_bytes
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "out")


def test_a_policy_change_that_cannot_fit_is_refused_before_it_is_saved(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws = _repo_without_main(tmp_path, faults)
    one = small_device(ws, faults, tmp_path / "one", 2 << 20, "one")
    two = small_device(ws, faults, tmp_path / "two", 2 << 20, "two")
    import_paths(ws, [_model(tmp_path / "src", tensors=40)], "m")  # ~1.3 MB over both
    for disk in (one, two):
        (disk / "filler.bin").write_bytes(b"\0" * (900 * 1024))
    with pytest.raises(UserError, match=r"not enough space for converting to copies=2"):
        set_policy(ws, "copies=2")
    assert str(ws.repo.policies.default) == "copies=1"  # not saved: imports are unchanged
    assert scrub(ws).ok


def test_free_space_is_known_without_statvfs_as_on_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows: no os.statvfs, while shutil.disk_usage answers (there through GetDiskFreeSpaceEx).
    statvfs = os.statvfs

    def disk_usage(path: str | Path) -> DiskUsage:
        st = statvfs(path)
        total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        return DiskUsage(total, total - st.f_bfree * st.f_frsize, free)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    monkeypatch.delattr(os, "statvfs")
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    main = ws.repo.devices.get("main")
    assert ws.repo.chunks.usable(main) is not None
    total, _summary = ws.repo.chunks.room()
    assert total is not None
    info = list_devices(ws)[0]
    assert info.capacity is not None
    assert info.free is not None
    assert 0 < info.free <= info.capacity
    with pytest.raises(UserError, match="not enough space for a huge import"):
        ws.repo.chunks.require_room(1 << 62, "a huge import")
    ws.close()
