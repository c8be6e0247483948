"""Resource faults on real mounts (a full tmpfs, a read-only remount) and through the I/O seam
(EIO): one line naming the device, exit 2, nothing half done; an interrupted adopt resumes."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from modelmanager.core.storage import StoreFactory
from modelmanager.core.storage.atomic import TEMP_PREFIX
from modelmanager.errors import DeviceError
from modelmanager.services import init_repository, open_workspace
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.history import remove_versions
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage, verify
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, tree_bytes, write_safetensors
from tests.support.faulty import FaultyFolders
from tests.support.mounts import small_tmpfs

CHUNK = 16 * 1024


def _model(folder: Path, seed: int, tensors: int = 6) -> Path:
    rng = np.random.default_rng(seed)
    data = {f"t{i}": random_weights(rng, (CHUNK // 4,)) for i in range(tensors)}
    write_safetensors(folder / "model.safetensors", data)
    (folder / "config.json").write_text('{"architectures": ["Tiny"]}')
    return folder


def _remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def _mm(tmp_path: Path, repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command line in a child process."""
    return subprocess.run([sys.executable, "-m", "modelmanager", "--repo", str(repo), *args],
                          env=subprocess_env(tmp_path, **env), capture_output=True, text=True,
                          check=False)  # fmt: skip


def _one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The single error line of a refused command (exit 2, no traceback), checked for words."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def test_full_main_gives_one_line_and_half_writes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    with small_tmpfs(repo, "1m"):
        init_repository(repo, chunk_size=CHUNK, group_size=1024).close()
        src = _model(tmp_path / "src", 1)
        first = _mm(tmp_path, repo, "import", str(src), "--model", "m", "--label", "prod")
        assert first.returncode == 0, first.stderr
        with contextlib.suppress(OSError):
            (repo / "filler").write_bytes(b"\0" * (2 << 20))  # fills the disk to the last page
        # Same content (no chunk to write): only the manifest would be written, and cannot.
        _one_line(_mm(tmp_path, repo, "import", str(src), "--model", "n"),
                  "device main", str(repo), "no space left", "ENOSPC")  # fmt: skip
        _one_line(_mm(tmp_path, repo, "label", "m@1", "stable"),
                  "device main", str(repo), "ENOSPC")  # fmt: skip
        (repo / "filler").unlink()
        ws = open_workspace(repo)
        try:
            assert ws.repo.model_names() == ["m"]  # no new manifest
            assert ws.repo.read_labels("m") == {"prod": 1}
            assert not [p for p in repo.rglob(f"{TEMP_PREFIX}*")]
            assert verify(ws).ok
            export_ref(ws, "m@1", tmp_path / "out")
            assert tree_bytes(tmp_path / "out") == tree_bytes(src)
        finally:
            ws.close()


def test_read_only_device_refuses_rm_gc_rebalance_and_drain_up_front(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    with small_tmpfs(tmp_path / "ro", "8m") as ro:
        ws = init_repository(repo, chunk_size=CHUNK, group_size=1024)
        add_device(ws, ro, name="slow")
        set_device(ws, "main", state="offline")  # every piece goes to the device
        sources = {n: _model(tmp_path / f"src{n}", n) for n in (1, 2)}
        for src in sources.values():
            import_paths(ws, [src], "m")
        add_device(ws, tmp_path / "spare", name="spare")  # somewhere a drain could go
        ws.close()
        before = sorted(p.relative_to(ro) for p in ro.rglob("*"))
        _remount(ro, "ro")
        try:
            for args in (["rm", "m@1"], ["gc"], ["rebalance"], ["device", "rm", "slow", "--drain"]):
                _one_line(_mm(tmp_path, repo, *args), "device slow", str(ro), "read-only",
                          "EROFS", "nothing was changed")  # fmt: skip
        finally:
            _remount(ro, "rw")
        assert sorted(p.relative_to(ro) for p in ro.rglob("*")) == before
        ws = open_workspace(repo)
        try:
            assert ws.repo.version_numbers("m") == [1, 2]  # rm refused before removing it
            assert sorted(d.name for d in ws.repo.devices.devices) == ["main", "slow", "spare"]
            for n, src in sources.items():
                export_ref(ws, f"m@{n}", tmp_path / f"out{n}")
                assert tree_bytes(tmp_path / f"out{n}") == tree_bytes(src)
        finally:
            ws.close()


def _eio_cluster(tmp_path: Path) -> tuple[StoreFactory, FaultyFolders, Path]:
    """Main (offline) and device d0 behind fault-injecting stores; versions m@1 and m@2.
    Also the faults as a StoreFactory (FaultyBlobStore.root is a property, the protocol's a
    plain attribute: mypy needs the cast)."""
    faults = FaultyFolders()
    stores = cast(StoreFactory, faults)
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024,
                         blob_stores=stores)  # fmt: skip
    add_device(ws, tmp_path / "dev", name="d0")
    set_device(ws, "main", state="offline")
    for n in (1, 2):
        import_paths(ws, [_model(tmp_path / f"src{n}", n)], "m")
    ws.close()
    return stores, faults, tmp_path / "dev"


def test_eio_on_a_device_probe_refuses_gc_and_rm_with_nothing_deleted(tmp_path: Path) -> None:
    stores, faults, dev = _eio_cluster(tmp_path)
    ws = open_workspace(tmp_path / "repo", blob_stores=stores)
    before = sorted(dev.rglob("*"))
    faults[dev].fail(errno.EIO, op="put", key=lambda k: k.startswith(TEMP_PREFIX))
    for run in (lambda: collect_garbage(ws), lambda: remove_versions(ws, ["m@1"])):
        with pytest.raises(DeviceError) as caught:
            run()
        text = str(caught.value)
        assert f"device d0 ({dev})" in text
        assert "EIO" in text
        assert "nothing was changed" in text
    assert ws.repo.version_numbers("m") == [1, 2]
    assert sorted(dev.rglob("*")) == before
    ws.close()


def test_eio_half_way_through_rm_says_what_was_done(tmp_path: Path) -> None:
    stores, faults, dev = _eio_cluster(tmp_path)
    ws = open_workspace(tmp_path / "repo", blob_stores=stores)
    faults[dev].fail(errno.EIO, op="delete", key="chunks", times=1)  # the probe passes
    with pytest.raises(DeviceError) as caught:
        remove_versions(ws, ["m@1"])
    text = str(caught.value)
    assert f"device d0 ({dev})" in text
    assert "EIO" in text
    assert "removing m@1 and deleting 0 of" in text
    assert "'gc' deletes the rest" in text
    assert caught.value.errno == errno.EIO  # still an OSError for code that skips a device
    assert ws.repo.version_numbers("m") == [2]
    assert collect_garbage(ws).deleted_chunks > 0  # the rest, once the device answers
    assert verify(ws).ok
    ws.close()


def test_interrupted_adopt_with_remove_original_resumes_without_a_partial_version(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    init_repository(repo, chunk_size=CHUNK, group_size=1024).close()
    shelf = tmp_path / "shelf"
    src = _model(shelf / "tiny", 5)
    original = tree_bytes(src)
    assert _mm(tmp_path, repo, "stores", "add", str(shelf), "--kind", "folder").returncode == 0
    adopt = ["stores", "adopt", "folder", "tiny", "--into", "tiny", "--remove-original"]
    killed = _mm(tmp_path, repo, *adopt, MODELMANAGER_CRASH_AT="adopt-original-removed:1")
    assert killed.returncode < 0 or killed.returncode == 137, killed
    assert len([p for p in src.iterdir() if p.is_file()]) == 1  # one original already gone
    again = _mm(tmp_path, repo, *adopt)
    assert again.returncode == 0, again.stderr
    assert "tiny@1" in again.stdout
    ws = open_workspace(repo)
    try:
        assert ws.repo.version_numbers("tiny") == [1]  # no second, partial version
        export_ref(ws, "tiny@1", tmp_path / "out")
        assert tree_bytes(tmp_path / "out") == original
    finally:
        ws.close()
    assert not any(p.is_file() for p in src.rglob("*"))  # the rest removed after the check


def test_adopt_with_remove_original_checks_every_folder_it_writes_before_importing(
    tmp_path: Path,
) -> None:
    """A read-only model store, then a read-only device: adopt --remove-original refuses in one
    line before the first change (no version imported, every original kept)."""
    repo = tmp_path / "repo"
    init_repository(repo, chunk_size=CHUNK, group_size=1024).close()
    adopt = ["stores", "adopt", "folder", "tiny", "--into", "tiny", "--remove-original"]
    with small_tmpfs(tmp_path / "shelf", "8m") as shelf:
        src = _model(shelf / "tiny", 5)
        original = tree_bytes(src)
        assert _mm(tmp_path, repo, "stores", "add", str(shelf), "--kind", "folder").returncode == 0
        _remount(shelf, "ro")
        try:
            _one_line(_mm(tmp_path, repo, *adopt), f"folder {src}", "read-only", "EROFS",
                      "nothing was changed")  # fmt: skip
        finally:
            _remount(shelf, "rw")
        with small_tmpfs(tmp_path / "ro", "8m") as ro:
            ws = open_workspace(repo)
            add_device(ws, ro, name="slow")
            ws.close()
            _remount(ro, "ro")
            try:
                _one_line(_mm(tmp_path, repo, *adopt), f"device slow ({ro})", "read-only",
                          "EROFS", "nothing was changed")  # fmt: skip
            finally:
                _remount(ro, "rw")
        assert tree_bytes(src) == original
    ws = open_workspace(repo)
    try:
        assert ws.repo.model_names() == []
    finally:
        ws.close()
