"""The read-only mount: a real repository mounted by a real ``modelmanager mount`` child process
through FUSE, read with safetensors, sha256 and mmap; writes refused; damaged copies read right;
``umount``, SIGINT and SIGTERM each unmount and exit 0. Skipped (with the reason) where /dev/fuse,
fusermount3 or the mfusepy binding is missing. The view under it (paths, reads, the chunk
cache) and the one-line refusals are tested without FUSE, everywhere."""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from modelmanager.cli.main import main
from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.storage import LocalBlobStore
from modelmanager.errors import NotFoundError
from modelmanager.services import Workspace, init_repository, open_workspace
from modelmanager.services import mount_fuse as binding
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.mount import Dir, File, Link, MountView
from modelmanager.services.policies import set_policy
from tests.conftest import TEST_CHUNK, TEST_GROUP, subprocess_env
from tests.support.builders import hf_folder, random_weights, write_safetensors

MODEL = "org/tiny"
FUSE_PROBLEM = binding.fuse_problem()
needs_fuse = pytest.mark.skipif(FUSE_PROBLEM is not None, reason=f"no FUSE: {FUSE_PROBLEM}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links followed) by relative path, as its sha256."""
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _mounted(where: Path) -> bool:
    return any(line.split()[1] == str(where) for line in Path("/proc/mounts").read_text()
               .splitlines())  # fmt: skip


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    """Two versions' folders: a Hugging Face folder, then the same with one shard changed."""
    one = hf_folder(tmp_path / "v1", np.random.default_rng(0))
    two = tmp_path / "v2"
    shutil.copytree(one, two)
    write_safetensors(two / "model-00002-of-00002.safetensors",
                      {"model.layers.1.mlp.weight": random_weights(np.random.default_rng(1),
                                                                   (256, 64))})  # fmt: skip
    return one, two


def _repository(tmp_path: Path, sources: tuple[Path, Path], *, copies: bool = False) -> Workspace:
    ws = init_repository(tmp_path / "repo", chunk_size=TEST_CHUNK, group_size=TEST_GROUP)
    if copies:
        set_device(ws, "main", state="offline")
        for i in range(2):
            add_device(ws, tmp_path / f"dev{i}", name=f"d{i}")
        set_policy(ws, "copies=2")
    import_paths(ws, [sources[0]], MODEL, labels=("prod",))
    import_paths(ws, [sources[1]], MODEL)
    return ws


class Mount:
    """A ``modelmanager mount`` child process serving ``where``."""

    def __init__(self, tmp_path: Path, repo: Path) -> None:
        self.where = tmp_path / "mnt"
        self.where.mkdir()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelmanager", "--repo", str(repo), "mount", str(self.where)],
            env=subprocess_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not _mounted(self.where):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the mount did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.05)
        self.model = self.where / MODEL

    def finish(self) -> tuple[int, str, str]:
        """Wait for the child to exit after an unmount: (exit code, stdout, stderr)."""
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err

    def stop(self) -> None:
        if _mounted(self.where):
            subprocess.run(["fusermount3", "-u", str(self.where)], check=False)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=60)


@pytest.fixture
def mounted(tmp_path: Path, sources: tuple[Path, Path]) -> Iterator[Mount]:
    _repository(tmp_path, sources).close()
    m = Mount(tmp_path, tmp_path / "repo")
    yield m
    m.stop()


@needs_fuse
def test_safe_open_on_a_mounted_file_gives_the_original_tensors(
    mounted: Mount, sources: tuple[Path, Path]
) -> None:
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        with safe_open(str(sources[0] / name), framework="numpy") as want, \
                safe_open(str(mounted.model / "@1" / name), framework="numpy") as got:  # fmt: skip
            assert sorted(got.keys()) == sorted(want.keys())
            assert got.metadata() == want.metadata()
            for key in want.keys():  # noqa: SIM118 (safe_open is not a mapping)
                assert np.array_equal(got.get_tensor(key), want.get_tensor(key)), key


@needs_fuse
def test_every_mounted_file_hashes_as_the_original_in_versions_labels_and_latest(
    mounted: Mount, sources: tuple[Path, Path]
) -> None:
    one, two = _tree(sources[0]), _tree(sources[1])
    assert one != two
    assert _tree(mounted.model / "@1") == one
    assert _tree(mounted.model / "prod") == one
    assert _tree(mounted.model / "@2") == two
    assert _tree(mounted.model / "latest") == two
    assert sorted(os.listdir(mounted.model)) == ["@1", "@2", "latest", "prod"]
    assert os.listdir(mounted.where) == ["org"]  # "org/tiny": a nested folder
    assert os.readlink(mounted.model / "prod") == "@1"
    assert os.readlink(mounted.model / "latest") == "@2"


@needs_fuse
def test_mmap_of_a_mounted_file_reads_the_original_bytes(
    mounted: Mount, sources: tuple[Path, Path]
) -> None:
    name = "model-00001-of-00002.safetensors"
    want = (sources[0] / name).read_bytes()
    assert len(want) > 2 * TEST_CHUNK  # the mapping spans several chunks
    with open(mounted.model / "@1" / name, "rb") as f, \
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:  # fmt: skip
        assert mapped[len(want) - 100 :] == want[-100:]  # the end first: out of order
        assert mapped[:] == want


@needs_fuse
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="only root may set a mount's read-ahead")  # fmt: skip
def test_the_mount_reads_ahead_a_mebibyte_where_root(mounted: Mount) -> None:
    # The kernel gives a FUSE mount 128 KiB and keeps the smaller of sysfs and the INIT reply:
    # a mount that raised only one of the two would read 128 here.
    device = binding.mount_device_number(mounted.where)
    assert device is not None
    assert device != binding.mount_device_number(Path("/"))
    knob = Path("/sys/class/bdi") / device / "read_ahead_kb"
    deadline = time.monotonic() + 10  # the kernel's INIT may finish just after it is listed
    while int(knob.read_text()) != binding.READ_AHEAD_KB and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(knob.read_text()) == binding.READ_AHEAD_KB
    f = mounted.model / "latest" / "model-00001-of-00002.safetensors"
    with open(f, "rb", buffering=0) as one:
        assert one.read() == (mounted.where.parent / "v2" / f.name).read_bytes()


def test_read_ahead_is_left_alone_where_nothing_is_mounted(tmp_path: Path) -> None:
    assert binding.mount_device_number(tmp_path) is None
    assert binding.raise_read_ahead(tmp_path) is None


@needs_fuse
def test_writes_are_refused(mounted: Mount) -> None:
    version = mounted.model / "@1"
    attempts = [
        lambda: os.open(version / "config.json", os.O_RDWR),
        lambda: os.open(version / "config.json", os.O_WRONLY | os.O_APPEND),
        lambda: os.open(version / "new.txt", os.O_WRONLY | os.O_CREAT, 0o644),
        lambda: (version / "sub").mkdir(),
        lambda: (version / "config.json").unlink(),
        lambda: (version / "config.json").rename(version / "other.json"),
        lambda: os.chmod(version / "config.json", 0o666),
    ]
    for attempt in attempts:
        with pytest.raises(OSError, match=r"Read-only|Permission|not permitted") as caught:
            attempt()
        assert caught.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    assert sorted(os.listdir(version)) == sorted(os.listdir(mounted.model / "@2"))


@needs_fuse
def test_a_piece_damaged_on_one_device_still_reads_right(
    tmp_path: Path, sources: tuple[Path, Path]
) -> None:
    ws = _repository(tmp_path, sources, copies=True)
    d0 = LocalBlobStore(ws.repo.devices.get("d0").root(ws.repo.root))
    manifest = ws.repo.resolve(f"{MODEL}@1")
    damaged = 0
    for f in manifest.files:
        for ref in f.chunks:
            path = d0.path(chunk_key(ref.id))
            if path.exists():  # every chunk has a copy on each device (copies=2)
                blob = bytearray(path.read_bytes())
                blob[len(blob) // 2] ^= 0xFF
                path.write_bytes(bytes(blob))
                damaged += 1
    ws.close()
    assert damaged > 4
    m = Mount(tmp_path, tmp_path / "repo")
    try:
        assert _tree(m.model / "@1") == _tree(sources[0])
        assert main(["umount", str(m.where)]) == 0
        code, out, err = m.finish()
    finally:
        m.stop()
    assert code == 0, err
    assert "read from another copy or rebuilt" in out


@needs_fuse
@pytest.mark.parametrize("how", ["umount", "SIGINT", "SIGTERM"])
def test_unmounting_empties_the_folder_and_exits_0(mounted: Mount, how: str) -> None:
    assert os.listdir(mounted.where) == ["org"]
    if how == "umount":
        done = subprocess.run([sys.executable, "-m", "modelmanager", "umount",
                               str(mounted.where)], capture_output=True, text=True,
                              env=subprocess_env(mounted.where.parent))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"Unmounted {mounted.where}"
    else:
        mounted.proc.send_signal(getattr(signal, how))
    code, out, err = mounted.finish()
    assert code == 0, err
    assert err == ""  # no traceback, no libfuse noise
    assert out.splitlines()[-1] == f"Unmounted {mounted.where}"
    assert not _mounted(mounted.where)
    assert os.listdir(mounted.where) == []


@needs_fuse
def test_a_version_imported_while_mounted_shows_up(
    mounted: Mount, tmp_path: Path, sources: tuple[Path, Path]
) -> None:
    ws = open_workspace(tmp_path / "repo")
    try:
        import_paths(ws, [sources[0]], MODEL, labels=("rc",))
    finally:
        ws.close()
    deadline = time.monotonic() + 20
    while os.readlink(mounted.model / "latest") != "@3":
        assert time.monotonic() < deadline, "the new version never showed up"
        time.sleep(0.2)
    assert os.readlink(mounted.model / "rc") == "@3"
    assert _tree(mounted.model / "rc") == _tree(sources[0])


# -- without FUSE: the view, the cache, the refusals ------------------------------------


def _names(view: MountView, path: str) -> tuple[str, ...]:
    node = view.node(path)
    assert isinstance(node, Dir), path
    return node.names


def test_the_view_reads_every_byte_at_any_offset_within_its_cache_limit(
    tmp_path: Path, sources: tuple[Path, Path]
) -> None:
    ws = _repository(tmp_path, sources)
    import_paths(ws, [sources[1]], "org")  # a model whose name is a folder of another's
    view = MountView(ws, cache_bytes=3 * TEST_CHUNK, read_ahead=4 * TEST_CHUNK)
    try:
        assert _names(view, "/") == ("org",)
        assert _names(view, "/org") == ("@1", "latest", "tiny")
        assert view.node("/org/latest") == Link("@1", view.started)
        assert view.node("/org/tiny/prod") == Link("@1", view.started)
        assert _names(view, "/org/tiny") == ("@1", "@2", "latest", "prod")
        with pytest.raises(NotFoundError):
            view.node("/org/tiny/@3")
        rng = np.random.default_rng(2)
        for path in sorted(p.name for p in sources[0].iterdir()):
            node = view.node(f"/org/tiny/@1/{path}")
            assert isinstance(node, File)
            want = (sources[0] / path).read_bytes()
            whole = b"".join(view.read(node, at, 4096) for at in range(0, node.size, 4096))
            assert whole == want
            for _ in range(20):
                at = int(rng.integers(0, node.size + 10))
                size = int(rng.integers(1, 3 * TEST_CHUNK))
                assert view.read(node, at, size) == want[at : at + size]
                assert view.cache.size <= 3 * TEST_CHUNK
        assert view.degraded == 0
    finally:
        view.close()
        ws.close()


def test_mount_without_the_binding_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    init_repository(tmp_path / "repo").close()
    (tmp_path / "mnt").mkdir()
    monkeypatch.setattr(binding, "BINDING", "no_such_fuse_binding")
    monkeypatch.setattr(binding.platform, "system", lambda: "Darwin")  # no /dev/fuse check
    code = main(["--repo", str(tmp_path / "repo"), "mount", str(tmp_path / "mnt")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "modelmanager: error: cannot mount: the mount needs no_such_fuse_binding: "
        "pip install 'modelmanager[mount]' (the mfusepy package)"
    ]


def test_mount_without_fusermount3_says_to_install_fuse3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    init_repository(tmp_path / "repo").close()
    (tmp_path / "mnt").mkdir()
    monkeypatch.setattr(binding.platform, "system", lambda: "Linux")
    monkeypatch.setattr(binding.os.path, "exists", lambda p: True)
    monkeypatch.setattr(binding.shutil, "which", lambda name: None)
    code = main(["--repo", str(tmp_path / "repo"), "mount", str(tmp_path / "mnt")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "modelmanager: error: cannot mount: fusermount3 is missing: install FUSE 3 "
        "(Debian/Ubuntu: apt-get install fuse3)"
    ]


@needs_fuse
def test_a_folder_not_empty_or_not_mounted_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init_repository(tmp_path / "repo").close()
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert main(["--repo", str(tmp_path / "repo"), "mount", str(full)]) == 2
    assert main(["umount", str(full)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"modelmanager: error: {full}: the folder is not empty: mount on an empty folder",
        f"modelmanager: error: {full}: no modelmanager mount here",
    ]
