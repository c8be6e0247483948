"""Placement spreads a chunk's pieces over distinct file systems: two device folders on one
disk are not independent, so with copies=2 over {a, b on one disk; c on another} every chunk
has a copy on c. Real folders: everything under ``tmp_path`` is one file system, the tmpfs
at /dev/shm is a second (the tests skip without it)."""

from __future__ import annotations

import collections
from pathlib import Path

from modelmanager.services import Workspace
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import preview_moves, rebalance, repair, scrub
from tests.services.test_devices import (
    _export_is_exact,
    _model,
    _pieces_under,
    _repo_without_main,
)
from tests.support.filesystems import other_fs

__all__ = ["other_fs"]  # the fixture, used by name


def _cluster(tmp_path: Path, other: Path, policy: str, offline: str | None = None) -> Workspace:
    """Devices a and b in ``tmp_path`` (one disk), c on the other file system; main offline."""
    ws = _repo_without_main(tmp_path)
    for name, root in (("a", tmp_path / "a"), ("b", tmp_path / "b"), ("c", other / "c")):
        add_device(ws, root, name=name)
    set_policy(ws, policy)
    if offline:
        set_device(ws, offline, state="offline")
    import_paths(ws, [_model(tmp_path / "src")], "m")
    return ws


def _holders(tmp_path: Path, other: Path) -> dict[str, set[str]]:
    """Device names holding a piece of each chunk."""
    out: dict[str, set[str]] = collections.defaultdict(set)
    for name, root in (("a", tmp_path / "a"), ("b", tmp_path / "b"), ("c", other / "c")):
        for cid, _what in _pieces_under(root):
            out[cid].add(name)
    return out


def test_two_copies_land_on_two_file_systems(tmp_path: Path, other_fs: Path) -> None:
    ws = _cluster(tmp_path, other_fs, "copies=2")
    holders = _holders(tmp_path, other_fs)
    assert len(holders) > 10
    bad = {cid[:12]: sorted(h) for cid, h in holders.items() if h not in ({"a", "c"}, {"b", "c"})}
    assert not bad, bad  # before: a rank-ordered placement put both copies on a and b
    on_a = sum(1 for h in holders.values() if "a" in h)
    assert 0 < on_a < len(holders)  # the one disk's share still spreads over its folders
    assert preview_moves(ws).moves == ()  # rebalance agrees with where imports put pieces
    _export_is_exact(ws, tmp_path, "out")


def test_fewer_file_systems_than_pieces_still_uses_every_device(
    tmp_path: Path, other_fs: Path
) -> None:
    ws = _cluster(tmp_path, other_fs, "copies=3")
    assert all(h == {"a", "b", "c"} for h in _holders(tmp_path, other_fs).values())
    assert scrub(ws).ok


def test_erasure_fragments_spread_over_file_systems(tmp_path: Path, other_fs: Path) -> None:
    ws = _cluster(tmp_path, other_fs, "ec=1+1")
    holders = _holders(tmp_path, other_fs)
    assert holders
    assert all("c" in h and len(h) == 2 for h in holders.values())
    _export_is_exact(ws, tmp_path, "out")


def test_rebalance_moves_crowded_copies_to_the_other_disk_once(
    tmp_path: Path, other_fs: Path
) -> None:
    ws = _cluster(tmp_path, other_fs, "copies=2", offline="c")  # imported onto a and b only
    assert all(h == {"a", "b"} for h in _holders(tmp_path, other_fs).values())
    set_device(ws, "c", state="online")
    report = rebalance(ws)
    assert report.moved_pieces == len(_holders(tmp_path, other_fs))
    assert not report.failed
    holders = _holders(tmp_path, other_fs)
    assert all(h in ({"a", "c"}, {"b", "c"}) for h in holders.values())
    again = rebalance(ws)
    assert (again.moved_pieces, again.failed) == (0, ())  # converged: no churn
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "out")


def test_repair_puts_a_lost_copy_on_the_other_disk(tmp_path: Path, other_fs: Path) -> None:
    ws = _cluster(tmp_path, other_fs, "copies=2")
    lost = {cid for cid, _what in _pieces_under(other_fs / "c")}
    for p in (other_fs / "c").rglob("*"):
        if p.is_file() and p.name.split(".")[0] in lost:
            p.unlink()  # c's copies are gone (the disk was replaced, say)
    assert {x.chunk for x in scrub(ws).under_replicated} == lost
    assert repair(ws).ok
    holders = _holders(tmp_path, other_fs)
    assert all(h in ({"a", "c"}, {"b", "c"}) for h in holders.values()), holders
    assert rebalance(ws).moved_pieces == 0
