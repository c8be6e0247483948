"""Scrub, policy previews and surplus removal follow placement's spread over file systems:
with devices a and b in ``tmp_path`` (one disk) and c on a tmpfs, a chunk's copies belong on
one of a, b and on c. Real folders; the tests needing a second file system skip without one."""

from __future__ import annotations

from pathlib import Path

from modelmanager.core.redundancy import Policy
from modelmanager.core.redundancy.plans import worst_tolerance
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import preview_policy, set_policy
from modelmanager.services.redundancy import preview_moves, rebalance, scrub
from tests.services.test_devices import _model, _pieces_under, _repo_without_main
from tests.services.test_file_system_placement import _cluster, _holders
from tests.support.filesystems import other_fs

__all__ = ["other_fs"]  # the fixture, used by name


def test_scrub_names_the_other_disk_for_a_missing_copy(tmp_path: Path, other_fs: Path) -> None:
    ws = _cluster(tmp_path, other_fs, "copies=2")
    lost = {cid for cid, _what in _pieces_under(other_fs / "c")}
    assert len(lost) > 10
    for p in (other_fs / "c").rglob("*"):
        if p.is_file() and p.name.split(".")[0] in lost:
            p.unlink()
    report = scrub(ws)
    assert {m.chunk for m in report.missing} == lost
    wrong = sorted({m.chunk[:12] for m in report.missing if m.device != "c"})
    assert not wrong, wrong  # before: the device ranked next (a or b, the same disk) was named


def test_preview_of_a_chunk_on_the_crowded_disk_counts_its_copy_on_the_other(
    tmp_path: Path, other_fs: Path
) -> None:
    ws = _cluster(tmp_path, other_fs, "copies=1")
    assert any(h <= {"a", "b"} for h in _holders(tmp_path, other_fs).values())
    # The second copy of a chunk on a (or b) goes to c, never to b (or a): survives one disk.
    assert preview_policy(ws, "copies=2").tolerates == 1
    set_policy(ws, "copies=2")
    holders = _holders(tmp_path, other_fs)
    assert all(h in ({"a", "c"}, {"b", "c"}) for h in holders.values()), holders


def test_copies_over_two_disks_survive_one(tmp_path: Path, other_fs: Path) -> None:
    ws = _repo_without_main(tmp_path)
    for name, root in (("a", tmp_path / "a"), ("b", tmp_path / "b"), ("c", other_fs / "c")):
        add_device(ws, root, name=name)
    import_paths(ws, [_model(tmp_path / "src", tensors=4)], "m")
    # Two folders on one disk and one on another: placement puts a copy on each disk.
    assert preview_policy(ws, "copies=2").tolerates == 1
    assert preview_policy(ws, "ec=1+1").tolerates == 1
    assert preview_policy(ws, "copies=3").tolerates == 1


def test_copies_over_folders_on_one_disk_survive_none(tmp_path: Path) -> None:
    ws = _repo_without_main(tmp_path)
    for name in ("a", "b", "c"):
        add_device(ws, tmp_path / name, name=name)
    import_paths(ws, [_model(tmp_path / "src", tensors=4)], "m")
    assert preview_policy(ws, "copies=2").tolerates == 0
    assert preview_policy(ws, "copies=3").tolerates == 0


def test_the_worst_case_deals_one_piece_per_file_system_per_round() -> None:
    def worst(policy: str, volumes: str) -> int:
        return worst_tolerance(Policy.parse(policy), list(volumes))

    assert worst("copies=2", "xxy") == 1
    assert worst("copies=2", "xx") == 0
    assert worst("copies=3", "xxy") == 1
    assert worst("copies=3", "xxxy") == 1  # the third copy doubles up on x
    assert worst("ec=2+2", "aabb") == 1  # two rounds: one of each disk twice
    assert worst("ec=4+2", "aabbcd") == 1  # a, b, c, d, then a and b again
    assert worst("ec=4+2", "aaabcd") == 0  # a, b, c, d, then a twice more: three on a
    assert worst("copies=4", "xy") == -1  # fewer devices than pieces


def test_lowering_copies_keeps_the_copy_on_the_lone_disk(tmp_path: Path, other_fs: Path) -> None:
    ws = _cluster(tmp_path, other_fs, "copies=3")
    assert all(h == {"a", "b", "c"} for h in _holders(tmp_path, other_fs).values())
    set_policy(ws, "copies=2")
    holders = _holders(tmp_path, other_fs)
    dropped = sorted(cid[:12] for cid, h in holders.items() if "c" not in h)
    assert not dropped, dropped  # before: rank alone kept a and b, and c's copy was deleted
    assert all(len(h) == 2 for h in holders.values())
    assert preview_moves(ws).moves == ()
    assert rebalance(ws).moved_pieces == 0
    assert scrub(ws).ok
