"""Removing versions: the preview's exact bytes, labels, numbers never reused, crash safety."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core import faults
from modelmanager.core.repo.versions import removed_key
from modelmanager.errors import (
    DoubtError,
    NotFoundError,
    RepositoryError,
    UserError,
)
from modelmanager.services import Workspace, history, open_workspace
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage, plan_gc, stats, verify
from modelmanager.services.remotes import RemoteSpec, open_remote, pull, push
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, small_model, tree_bytes, write_safetensors


def _versions(ws: Workspace, tmp_path: Path, model: str = "m", n: int = 3) -> list[Path]:
    """``n`` versions of one model: each changes the first three tensors and keeps the rest."""
    rng = np.random.default_rng(5)
    tensors = small_model(rng)
    folders = []
    for i in range(n):
        for name in list(tensors)[:3]:
            tensors[name] = random_weights(rng, tensors[name].shape)
        folder = tmp_path / f"{model}-src{i}"
        write_safetensors(folder / "model.safetensors", tensors)
        import_paths(ws, [folder], model, message=("alpha", "bravo", "charlie")[i])
        folders.append(folder)
    return folders


def _assert_exports(ws: Workspace, tmp_path: Path, sources: dict[str, Path]) -> None:
    for ref, src in sources.items():
        out = tmp_path / "out" / ref.replace("@", "-")
        export_ref(ws, ref, out, force=True)
        assert tree_bytes(out) == tree_bytes(src), ref


def test_the_preview_names_what_goes_and_the_bytes_it_frees_exactly(
    ws: Workspace, tmp_path: Path
) -> None:
    src = _versions(ws, tmp_path)
    one, two, three = (ws.repo.resolve(f"m@{n}").chunk_ids() for n in (1, 2, 3))
    before = stats(ws)
    plan = history.plan_removal(ws, ["m@2"])
    assert stats(ws) == before  # a preview changes nothing
    assert plan.refs == ("m@2",)
    assert plan.children == ("m@3",)  # m@3 was made from m@2
    assert plan.labels == ()
    assert plan.emptied == ()
    only_two = two - one - three
    assert only_two
    assert two & (one | three)
    assert {c for c, _n in plan.freed} == only_two
    assert plan.shared_chunks == len(two & (one | three))

    result = history.remove_versions(ws, ["m@2"])
    after = stats(ws)
    assert result.freed_bytes == plan.freed_bytes == before.stored_bytes - after.stored_bytes
    assert ws.repo.version_numbers("m") == [1, 3]
    assert [v.seq for v in ws.catalog.versions("m")] == [3, 1]
    assert [v.seq for v in ws.catalog.search("bravo")] == []  # its message is found no more
    assert [v.seq for v in ws.catalog.search("charlie")] == [3]
    assert plan_gc(ws).chunks == ()  # nothing left behind for gc
    assert verify(ws).ok
    _assert_exports(ws, tmp_path, {"m@1": src[0], "m@3": src[2]})
    with pytest.raises(NotFoundError, match="no version 2"):
        ws.repo.resolve("m@2")


def test_a_labelled_version_needs_force_and_its_labels_go_with_it(
    ws: Workspace, tmp_path: Path
) -> None:
    _versions(ws, tmp_path, n=2)
    history.set_label(ws, "m@1", "prod")
    history.set_label(ws, "m@1", "stable")
    history.set_label(ws, "m@2", "next")
    before = stats(ws)
    with pytest.raises(UserError, match=r"m@1 carries labels \(m@prod, m@stable\).*--force"):
        history.remove_versions(ws, ["m@prod"])
    assert stats(ws) == before
    assert ws.repo.version_numbers("m") == [1, 2]
    result = history.remove_versions(ws, ["m@prod"], force=True)
    assert result.plan.labels == ("m@prod", "m@stable")
    assert ws.repo.read_labels("m") == {"next": 2}
    assert ws.catalog.versions("m")[0].labels == ("next",)
    assert verify(ws).ok  # no label points at a missing version


def test_a_version_number_is_never_given_out_twice(ws: Workspace, tmp_path: Path) -> None:
    src = _versions(ws, tmp_path, n=2)
    history.remove_versions(ws, ["m@2"])
    assert (ws.repo.root / removed_key("m", 2)).is_file()
    again = import_paths(ws, [src[1]], "m")
    assert again.manifest.ref == "m@3"  # not m@2: that name meant other content
    assert again.manifest.parent == 1


def test_removing_every_version_of_a_model_removes_the_model(ws: Workspace, tmp_path: Path) -> None:
    _versions(ws, tmp_path, "gone", n=2)
    kept = _versions(ws, tmp_path, "kept", n=1)
    plan = history.plan_removal(ws, ["gone@1", "gone@2", "gone@1"])
    assert plan.refs == ("gone@1", "gone@2")
    assert plan.emptied == ("gone",)
    assert plan.children == ()  # gone@2's parent goes with it
    history.remove_versions(ws, ["gone@1", "gone@2"])
    assert ws.repo.model_names() == ["kept"]
    assert [m.name for m in history.list_models(ws)] == ["kept"]
    assert plan_gc(ws).chunks == ()
    _assert_exports(ws, tmp_path, {"kept@1": kept[0]})
    assert import_paths(ws, [kept[0]], "gone").manifest.ref == "gone@3"


def test_what_cannot_be_removed_is_refused_with_the_reason(ws: Workspace, tmp_path: Path) -> None:
    _versions(ws, tmp_path, n=2)
    with pytest.raises(UserError, match="'m' names a model, not a version: use m@N"):
        history.plan_removal(ws, ["m"])
    with pytest.raises(NotFoundError, match="no version 7"):
        history.remove_versions(ws, ["m@1", "m@7"])
    assert ws.repo.version_numbers("m") == [1, 2]  # nothing went: one name was wrong
    with pytest.raises(UserError, match="name the versions"):
        history.plan_removal(ws, [])
    other = tmp_path / "other.safetensors"
    write_safetensors(other, small_model(np.random.default_rng(9)))
    import_paths(ws, [other], "n")
    (ws.repo.root / "models" / "n" / "versions" / "00000001.json").write_text("{broken")
    with pytest.raises(DoubtError, match=r"cannot remove versions: 1 metadata record\(s\) fail "
                       r"their check \(.*n/versions/00000001.json: damaged"):  # fmt: skip
        history.remove_versions(ws, ["m@1"])
    assert ws.repo.version_numbers("m") == [1, 2]


def test_a_removed_version_can_come_back_only_with_its_own_content(
    ws: Workspace, tmp_path: Path
) -> None:
    src = _versions(ws, tmp_path, n=2)
    shared = open_remote(RemoteSpec("shared", f"file://{tmp_path / 'shared'}"))
    push(ws, "m@2", shared)
    history.remove_versions(ws, ["m@2"])
    pulled = pull(ws, shared, "m@2")  # the same content back: allowed, and no longer "removed"
    assert pulled.manifest_written
    assert ws.repo.version_numbers("m") == [1, 2]
    assert ws.repo.removed_numbers("m") == []
    _assert_exports(ws, tmp_path, {"m@2": src[1]})

    history.remove_versions(ws, ["m@2"])
    other = tmp_path / "elsewhere"
    ws2 = open_workspace(tmp_path / "elsewhere-repo", create=True)
    try:
        _versions(ws2, other, n=1)
        import_paths(ws2, [tmp_path / "m-src0"], "m")  # a different m@2
        push(ws2, "m@2", open_remote(RemoteSpec("o", f"file://{other / 'remote'}")))
    finally:
        ws2.close()
    before = stats(ws)
    with pytest.raises(RepositoryError, match="m@2 was removed from this repository and had"):
        pull(ws, open_remote(RemoteSpec("o", f"file://{other / 'remote'}")), "m@2")
    assert stats(ws) == before  # refused before any chunk moved
    assert ws.repo.version_numbers("m") == [1]


REMOVE = [sys.executable, "-m", "modelmanager", "rm", "m@2", "--force"]


@pytest.mark.parametrize(
    ("event", "still_there"),
    [
        ("after-removal-record", True),
        ("after-removal-labels", True),
        ("after-removal-catalog", False),
        ("removal-chunk-deleted:2", False),
    ],
)
def test_a_removal_killed_at_each_boundary_leaves_a_valid_repository(
    ws: Workspace, tmp_path: Path, event: str, still_there: bool
) -> None:
    src = _versions(ws, tmp_path)
    history.set_label(ws, "m@2", "prod")
    history.set_label(ws, "m@3", "next")
    env = subprocess_env(tmp_path, **{faults.ENV_CRASH_AT: event})
    proc = subprocess.run([*REMOVE[:3], "--repo", str(ws.repo.root), *REMOVE[3:]], env=env,
                          capture_output=True, check=False)  # fmt: skip
    assert proc.returncode == -9, proc.stderr  # it died there
    ws.catalog.sync()
    assert verify(ws).ok  # every label points at a version; every kept chunk is there
    assert ws.repo.version_numbers("m") == ([1, 2, 3] if still_there else [1, 3])
    assert ws.repo.read_labels("m").get("next") == 3
    assert [v.seq for v in ws.catalog.versions("m")] == ([3, 2, 1] if still_there else [3, 1])
    _assert_exports(ws, tmp_path, {"m@1": src[0], "m@3": src[2]})
    if still_there:  # run again: it completes
        history.remove_versions(ws, ["m@2"], force=True)
    collect_garbage(ws)  # whatever the killed removal left unused
    assert ws.repo.version_numbers("m") == [1, 3]
    assert import_paths(ws, [src[1]], "m").manifest.ref == "m@4"
    assert verify(ws).ok
