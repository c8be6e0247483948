"""Opening a repository reads only what changed since the catalog last caught up.

Other processes are real command-line subprocesses with their own catalog (another cache
folder), so ours is behind and must catch up from the repository's change record alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelmanager import paths
from modelmanager.core.catalog import Catalog, ModelRow
from modelmanager.core.faults import ENV_CRASH_AT
from modelmanager.core.repo.changes import CHANGES_FILE, read_log
from modelmanager.core.repo.replicas import ReplicatedRecords
from modelmanager.core.repo.versions import VersionStore
from modelmanager.services import Workspace, open_workspace
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.builders import write_safetensors


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every manifest key read (by any repository object in this process)."""
    seen: list[str] = []
    real = VersionStore.read_manifest_key

    def counting(self: VersionStore, key: str):  # type: ignore[no-untyped-def]
        seen.append(key)
        return real(self, key)

    monkeypatch.setattr(VersionStore, "read_manifest_key", counting)
    return seen


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every folder of records listed (the old sync listed all of ``models/`` on every open)."""
    seen: list[str] = []
    real = ReplicatedRecords.keys

    def counting(self: ReplicatedRecords, prefix: str):  # type: ignore[no-untyped-def]
        seen.append(prefix)
        return real(self, prefix)

    monkeypatch.setattr(ReplicatedRecords, "keys", counting)
    return seen


def _file(tmp_path: Path, value: float) -> Path:
    path = tmp_path / "src" / f"{value}.safetensors"
    return write_safetensors(path, {"w": np.full(3, value, dtype=np.float32)})


def _populate(ws: Workspace, tmp_path: Path) -> None:
    for i, model in enumerate(("org/alpha", "bravo", "charlie")):
        for seq in (1, 2):
            import_paths(ws, [_file(tmp_path, i * 10 + seq)], model, message=f"step {seq}",
                         labels=("prod",) if seq == 1 else ())  # fmt: skip


def _mm(tmp_path: Path, repo: Path, *args: str, crash: str = "", ok: bool = True) -> None:
    """A command in another process, with a catalog of its own (so ours stays behind)."""
    env = subprocess_env(tmp_path, **{paths.ENV_CACHE: str(tmp_path / "other-cache")})
    if crash:
        env[ENV_CRASH_AT] = crash
    proc = subprocess.run([sys.executable, "-m", "modelmanager", "--repo", str(repo), *args],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert (proc.returncode == 0) == ok, proc.stderr


def _state(ws: Workspace) -> tuple[list[str], dict[str, dict[str, int]]]:
    """(every ref, labels by model) as the catalog lists them."""
    refs = [f"{v.model}@{v.seq}" for m in ws.catalog.models() for v in ws.catalog.versions(m.name)]
    return sorted(refs), {m.name: m.labels for m in ws.catalog.models() if m.labels}


def _truth(ws: Workspace) -> tuple[list[str], dict[str, dict[str, int]]]:
    """The same, from a catalog rebuilt from every manifest."""
    fresh = Catalog(ws.catalog.path.with_name("truth.sqlite"), ws.repo)
    try:
        fresh.rebuild()
        refs = [f"{v.model}@{v.seq}" for m in fresh.models() for v in fresh.versions(m.name)]
        return sorted(refs), {m.name: m.labels for m in fresh.models() if m.labels}
    finally:
        fresh.close()


@pytest.fixture
def opened(ws: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    """A populated repository, reopened: its catalog is up to date."""
    _populate(ws, tmp_path)
    ws.close()
    again = open_workspace(ws.repo.root)
    yield again
    again.close()


def test_a_warm_open_reads_no_manifest_and_lists_no_folder(
    opened: Workspace, reads: list[str], listings: list[str]
) -> None:
    for _ in range(3):
        open_workspace(opened.repo.root).close()
    assert opened.catalog.sync().added == 0
    assert (reads, listings) == ([], [])


def test_the_name_check_lists_no_folder_and_sees_another_process_import(
    opened: Workspace, tmp_path: Path, listings: list[str]
) -> None:
    _mm(tmp_path, opened.repo.root, "import", "--model", "Hotel", str(_file(tmp_path, 33)))
    with opened.repo.writer():
        assert opened.repo.existing_model_name("HOTEL") == "Hotel"  # our catalog was behind
        assert opened.repo.existing_model_name("ORG/ALPHA") == "org/alpha"
        assert opened.repo.existing_model_name("india") is None
    assert [p for p in listings if p == "models"] == []


def test_another_process_import_rm_and_label_move_are_read_alone(
    opened: Workspace, tmp_path: Path, reads: list[str]
) -> None:
    root = opened.repo.root
    _mm(tmp_path, root, "import", "--model", "delta", "--label", "prod", str(_file(tmp_path, 99)))
    _mm(tmp_path, root, "import", "--model", "bravo", str(_file(tmp_path, 98)))
    _mm(tmp_path, root, "rm", "--force", "org/alpha@1")
    _mm(tmp_path, root, "label", "charlie@2", "prod")
    _mm(tmp_path, root, "label", "--delete", "bravo", "prod")
    result = opened.catalog.sync()
    assert (result.added, result.removed) == (2, 1)
    assert sorted(reads) == ["models/bravo/versions/00000003.json",
                             "models/delta/versions/00000001.json"]  # fmt: skip
    refs, labels = _state(opened)
    assert (refs, labels) == _truth(opened)
    assert "org/alpha@1" not in refs
    assert "delta@1" in refs
    assert "bravo@3" in refs
    assert labels == {"charlie": {"prod": 2}, "delta": {"prod": 1}}


@pytest.mark.parametrize("crash", ["after-manifest", "after-labels", "after-catalog"])
def test_a_writer_killed_before_it_settles_is_caught_up_with(
    opened: Workspace, tmp_path: Path, crash: str
) -> None:
    root = opened.repo.root
    _mm(tmp_path, root, "import", "--model", "echo", "--label", "prod",
        str(_file(tmp_path, 77)), crash=crash, ok=False)  # fmt: skip
    log = read_log(root)
    assert log is not None
    assert log.pending == ("echo",)
    for _ in range(2):  # every open reads the model again while it is pending
        opened.catalog.sync()
        assert _state(opened) == _truth(opened)
    assert "echo@1" in _state(opened)[0]
    _mm(tmp_path, root, "label", "echo@1", "stable")  # the next writer settles it
    log = read_log(root)
    assert log is not None
    assert log.pending == ()
    opened.catalog.sync()
    assert _state(opened) == _truth(opened)
    assert _state(opened)[1]["echo"]["stable"] == 1


def test_a_catalog_that_read_in_the_middle_of_a_write_reads_again(
    opened: Workspace, tmp_path: Path
) -> None:
    other = open_workspace(opened.repo.root)
    try:
        with other.repo.writer():
            import_paths(other, [_file(tmp_path, 55)], "foxtrot")
            opened.catalog.sync()  # sees the version, before the label below is set
            other.repo.set_label("foxtrot", "prod", 1)
        opened.catalog.sync()
        assert _state(opened)[1]["foxtrot"] == {"prod": 1}
        assert _state(opened) == _truth(opened)
    finally:
        other.close()


def test_a_repository_without_the_record_is_read_in_full_once(
    opened: Workspace, tmp_path: Path, reads: list[str]
) -> None:
    root = opened.repo.root
    (root / CHANGES_FILE).unlink()  # as written by a ModelManager before the record existed
    _mm(tmp_path, root, "import", "--model", "golf", str(_file(tmp_path, 44)))
    (root / CHANGES_FILE).unlink()
    opened.catalog.sync()
    assert "golf@1" in _state(opened)[0]
    assert read_log(root) is not None  # the reader started a record
    reads.clear()
    open_workspace(root).close()
    assert reads == []


def test_a_catalog_from_before_the_record_is_read_in_full(
    opened: Workspace, tmp_path: Path
) -> None:
    opened.catalog._db.execute("DELETE FROM state")  # what an older catalog holds: no position
    _mm(tmp_path, opened.repo.root, "rm", "--force", "bravo@1")
    opened.catalog.sync()
    assert "bravo@1" not in _state(opened)[0]
    assert _state(opened) == _truth(opened)


def test_a_model_folder_removed_by_hand_is_noticed(opened: Workspace, reads: list[str]) -> None:
    shutil.rmtree(opened.repo.root / "models" / "charlie")
    opened.catalog.sync()
    assert [r for r in _state(opened)[0] if r.startswith("charlie")] == []
    assert reads == []  # the other models' rows were already right


def test_reindex_reads_everything_and_warm_opens_read_nothing_after(
    opened: Workspace, reads: list[str]
) -> None:
    assert opened.catalog.rebuild().added == 6
    assert len(reads) == 6
    reads.clear()
    open_workspace(opened.repo.root).close()
    assert reads == []


def test_a_settle_lost_to_a_power_loss_never_hides_a_later_change(
    opened: Workspace, tmp_path: Path
) -> None:
    root = opened.repo.root
    reader = Catalog(tmp_path / "reader.sqlite", opened.repo)
    try:
        reader.sync()
        with opened.repo.writer():
            import_paths(opened, [_file(tmp_path, 21)], "juliet")
            synced = (root / CHANGES_FILE).read_bytes()  # what the disk surely holds
        reader.sync()  # it saw the settled record, which was never synced...
        (root / CHANGES_FILE).write_bytes(synced)  # ...and is lost with the power
        import_paths(opened, [_file(tmp_path, 22)], "kilo")
        reader.sync()
        assert [m.name for m in reader.models()] == [m.name for m in _truth_models(opened)]
        assert "kilo" in [m.name for m in reader.models()]
    finally:
        reader.close()


def _truth_models(ws: Workspace) -> list[ModelRow]:
    """Every model, from a catalog rebuilt from every manifest."""
    fresh = Catalog(ws.catalog.path.with_name("truth.sqlite"), ws.repo)
    try:
        fresh.rebuild()
        return fresh.models()
    finally:
        fresh.close()
