"""Removing a dead device (previewed, refused while it would lose data), renaming a device,
and devices that share one file system, on real folders and a real second file system."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelmanager.core.placement import read_identity
from modelmanager.core.redundancy import Policy
from modelmanager.core.redundancy.plans import survives, worst_tolerance
from modelmanager.errors import UserError
from modelmanager.services import init_repository, open_workspace
from modelmanager.services.devices import (
    add_device,
    list_devices,
    preview_forget,
    remove_device,
    set_device,
)
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import preview_policy
from modelmanager.services.redundancy import repair, scrub
from tests.services.test_devices import CHUNK, _export_is_exact, _model, _pieces_under, make_cluster
from tests.support.filesystems import other_fs

__all__ = ["other_fs"]  # the fixture, used by name


def _names(ws) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.name for d in ws.repo.devices.devices]


def test_forgetting_a_dead_device_leaves_under_replicated_what_the_preview_said(
    tmp_path: Path,
) -> None:
    ws, roots = make_cluster(tmp_path, 4, "copies=2")
    held = {cid for cid, _what in _pieces_under(roots[3])}
    assert held
    shutil.rmtree(roots[3])  # the disk died
    plan = preview_forget(ws, "d3")
    assert (plan.readable, plan.lost, plan.under_replicated) == (False, 0, len(held))
    assert (plan.models_under, plan.models_lost) == (("m",), ())
    assert "d3" in _names(ws)  # a preview changes nothing

    result = remove_device(ws, "d3", drain=False, force=True)
    assert result.forgotten == plan
    assert _names(ws) == ["main", "d0", "d1", "d2"]
    report = scrub(ws)
    assert {x.chunk for x in report.under_replicated} == held
    assert report.lost == ()
    assert repair(ws).ok
    assert scrub(ws).ok
    _export_is_exact(ws, tmp_path, "out")


def test_forgetting_the_only_copies_is_refused_unless_the_loss_is_confirmed(
    tmp_path: Path,
) -> None:
    ws, roots = make_cluster(tmp_path, 3, "copies=1")
    only = {cid for cid, _what in _pieces_under(roots[1])}
    assert only
    set_device(ws, "d1", state="offline")  # failing: taken offline, its pieces unreadable
    plan = preview_forget(ws, "d1")
    assert (plan.readable, plan.lost, plan.under_replicated) == (False, len(only), 0)
    assert (plan.models_lost, plan.versions_lost) == (("m",), ("m@1",))
    with pytest.raises(UserError, match=rf"would lose data: {len(only)} chunks? of m \(1 "):
        remove_device(ws, "d1", drain=False, force=True)
    assert "d1" in _names(ws)
    # The refusal kept the way back: the disk returns and nothing is missing.
    set_device(ws, "d1", state="online")
    assert scrub(ws).ok

    readable = preview_forget(ws, "d1")  # mounted: its pieces are counted, not guessed
    assert (readable.readable, readable.lost, readable.pieces) == (True, len(only), len(only))
    remove_device(ws, "d1", drain=False, force=True, allow_loss=True)
    assert "d1" not in _names(ws)
    assert {x.chunk for x in scrub(ws).lost} == only
    assert _pieces_under(roots[1])  # forgotten, not deleted: adding the folder brings it back
    assert add_device(ws, roots[1]).recognised
    assert scrub(ws).ok


def test_main_cannot_be_removed_renamed_or_impersonated(tmp_path: Path) -> None:
    ws, _roots = make_cluster(tmp_path, 2, "copies=1")
    with pytest.raises(UserError, match="'main' is the repository folder"):
        preview_forget(ws, "main")
    with pytest.raises(UserError, match="'main'"):
        set_device(ws, "main", rename="home")
    with pytest.raises(UserError, match="'main'"):
        set_device(ws, "d0", rename="main")
    with pytest.raises(UserError, match="already exists"):
        set_device(ws, "d0", rename="d1")
    with pytest.raises(UserError, match="invalid device name"):
        set_device(ws, "d0", rename="a b")
    assert _names(ws) == ["main", "d0", "d1"]


def test_a_renamed_device_keeps_its_id_pieces_and_identity(tmp_path: Path) -> None:
    ws, roots = make_cluster(tmp_path, 3, "copies=1")
    before = _pieces_under(roots[0])
    old = ws.repo.devices.get("d0")
    changed = set_device(ws, "d0", rename="fast", weight=2.5, tier="warm")
    assert (changed.device.id, changed.device.name) == (old.id, "fast")
    identity = read_identity(roots[0])
    assert identity is not None
    assert (identity["name"], identity["device_id"]) == ("fast", old.id)
    reopened = open_workspace(ws.repo.root)
    fast = reopened.repo.devices.get("fast")
    assert (fast.weight, fast.tier, fast.path) == (2.5, "warm", str(roots[0]))
    assert _pieces_under(roots[0]) == before
    assert scrub(reopened).ok
    _export_is_exact(reopened, tmp_path, "out")
    reopened.close()


def test_devices_on_one_file_system_are_named_and_count_once(
    tmp_path: Path, other_fs: Path
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    same = add_device(ws, tmp_path / "a", name="a")
    assert same.shares_with == ("main",)
    assert "same file system as main" in same.sharing_text()
    other = add_device(ws, other_fs / "b", name="b")
    assert (other.shares_with, other.sharing_text()) == ((), "")
    import_paths(ws, [_model(tmp_path / "src")], "m")
    shared = {i.device.name: i.shares_with for i in list_devices(ws)}
    assert shared == {"main": ("a",), "a": ("main",), "b": ()}

    # Three folders, two disks: placement puts each chunk's two copies on both disks.
    assert preview_policy(ws, "copies=2").tolerates == 1
    assert preview_policy(ws, "copies=3").tolerates == 1
    set_device(ws, "a", state="offline")  # placement now picks main and b: two disks
    assert preview_policy(ws, "copies=2").tolerates == 1


@pytest.mark.parametrize(
    ("policy", "volumes", "expected"),
    [
        ("copies=2", ["x", "x"], 0),
        ("copies=2", ["x", "y"], 1),
        ("copies=3", ["x", "x", "y"], 1),
        ("ec=4+2", ["a", "b", "c", "d", "e", "f"], 2),
        ("ec=4+2", ["a", "a", "c", "d", "e", "f"], 1),  # losing disk a costs two fragments
        ("ec=4+2", ["a", "a", "a", "d", "e", "f"], 0),  # ... three: more than M
        ("ec=2+2", ["a", "a", "b", "b"], 1),
        ("ec=4+2", ["a", "b", "c", "d", "e"], 1),  # a fragment short already
    ],
)
def test_what_a_chunk_survives_counts_file_systems(
    policy: str, volumes: list[str], expected: int
) -> None:
    assert survives(Policy.parse(policy), list(volumes)) == expected


def test_the_unluckiest_placement_crowds_the_biggest_file_system() -> None:
    assert worst_tolerance(Policy.parse("copies=2"), ["x", "x", "y"]) == 1  # spread: x, y
    assert worst_tolerance(Policy.parse("copies=2"), ["x", "y", "z"]) == 1
    assert worst_tolerance(Policy.parse("ec=4+2"), ["a", "a", "b", "c", "d", "e"]) == 1
    assert worst_tolerance(Policy.parse("ec=4+2"), list("abcdef")) == 2
