"""An import reads only what the user chose (issue 15): regular files, and links that stay
inside the folder imported (or the store adopted from). Links leading out, FIFOs, sockets,
devices, loops and names that are not UTF-8 are refused with one line and exit 2, before
anything is written; a canary file outside the model folder never reaches a chunk."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.localfiles import MAX_LINKED, list_input, open_regular
from modelmanager.core.stores import Store, StoreFile, StoreModel
from modelmanager.errors import NotFoundError, UserError
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from modelmanager.services.stores import adopt, find_model, removal_preview
from tests.conftest import subprocess_env
from tests.services.test_stores import REV2, hf_cache
from tests.support.builders import random_weights, tree_bytes, tree_state, write_safetensors

pytestmark = pytest.mark.skipif(os.name != "posix", reason="links, FIFOs and sockets are POSIX")


def _mm(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child, isolated like the tests."""
    return subprocess.run([sys.executable, "-m", "modelmanager", *args],
                          env=subprocess_env(tmp_path, HF_HUB_CACHE=str(tmp_path / "hf")),
                          capture_output=True, text=True, check=False, timeout=timeout)  # fmt: skip


@pytest.fixture
def cli_repo(tmp_path: Path) -> Path:
    """A repository made by ``modelmanager init`` that already holds one version."""
    repo = tmp_path / "repo"
    assert _mm(tmp_path, "--repo", str(repo), "init").returncode == 0
    seed = tmp_path / "seed"
    seed.mkdir()
    write_safetensors(seed / "w.safetensors", {"w": np.ones((8, 8), np.float32)})
    assert (
        _mm(tmp_path, "--repo", str(repo), "import", str(seed), "--model", "seed").returncode == 0
    )
    return repo


def _model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    rng = np.random.default_rng(1)
    write_safetensors(folder / "model.safetensors", {"w": random_weights(rng, (64, 64))})
    (folder / "config.json").write_text('{"model_type": "tiny"}')
    return folder


def _canary(tmp_path: Path) -> bytes:
    data = os.urandom(200_000)
    (tmp_path / "secret.bin").write_bytes(data)
    return data


def _holds(root: Path, needle: bytes) -> list[str]:
    """Files under ``root`` whose bytes contain ``needle``."""
    return [name for name, data in tree_bytes(root).items() if needle in data]


def _refused_once(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_link_to_a_file_outside_is_refused_and_its_bytes_never_stored(
    tmp_path: Path, cli_repo: Path
) -> None:
    folder = _model_folder(tmp_path)
    canary = _canary(tmp_path)
    (folder / "extra.bin").symlink_to(tmp_path / "secret.bin")
    before = tree_state(cli_repo)
    proc = _mm(tmp_path, "--repo", str(cli_repo), "import", str(folder), "--model", "victim")
    _refused_once(proc, str(folder / "extra.bin"), str(tmp_path / "secret.bin"), "outside")
    assert tree_state(cli_repo) == before
    assert _holds(cli_repo, canary[1000:1064]) == []

    # Asked for, the link is followed: the same check finds the canary's bytes in the export.
    proc = _mm(tmp_path, "--repo", str(cli_repo), "import", str(folder), "--model", "victim",
               "--symlinks", "follow")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert _mm(tmp_path, "--repo", str(cli_repo), "export", "victim", str(out)).returncode == 0
    assert (out / "extra.bin").read_bytes() == canary
    assert _holds(out, canary[1000:1064]) == ["extra.bin"]


def test_symlinks_refuse_refuses_even_a_link_inside(tmp_path: Path, cli_repo: Path) -> None:
    folder = _model_folder(tmp_path)
    (folder / "alias.safetensors").symlink_to("model.safetensors")
    before = tree_state(cli_repo)
    proc = _mm(tmp_path, "--repo", str(cli_repo), "import", str(folder), "--model", "m",
               "--symlinks", "refuse")  # fmt: skip
    _refused_once(proc, "alias.safetensors", "links are refused")
    assert tree_state(cli_repo) == before
    proc = _mm(tmp_path, "--repo", str(cli_repo), "import", str(folder), "--model", "m")
    assert proc.returncode == 0, proc.stderr  # inside the folder: followed by default


@pytest.mark.parametrize(
    ("target", "why"),
    [("/dev/zero", "a character device, not a regular file"), ("/proc/self/status", "outside")],
)
def test_links_to_devices_and_proc_files_are_refused(
    ws: Workspace, tmp_path: Path, target: str, why: str
) -> None:
    if not Path(target).exists():
        pytest.skip(f"no {target} here")
    folder = _model_folder(tmp_path)
    (folder / "weights.bin").symlink_to(target)
    before = tree_state(ws.repo.root)
    with pytest.raises(UserError) as info:
        import_paths(ws, [folder], "m")
    assert str(folder / "weights.bin") in str(info.value)
    assert why in str(info.value)
    assert tree_state(ws.repo.root) == before


def test_a_proc_file_followed_on_request_is_refused_not_stored_empty(
    ws: Workspace, tmp_path: Path
) -> None:
    """/proc files say size 0 and hold text: reading past the size finds it out."""
    folder = _model_folder(tmp_path)
    (folder / "status").symlink_to("/proc/self/status")
    with pytest.raises(UserError, match="more bytes than its size"):
        import_paths(ws, [folder], "m", symlinks="follow")
    assert ws.repo.version_numbers("m") == []


def test_a_fifo_is_refused_at_once(tmp_path: Path, cli_repo: Path) -> None:
    folder = _model_folder(tmp_path)
    os.mkfifo(folder / "pipe.safetensors")
    before = tree_state(cli_repo)
    started = time.monotonic()
    proc = _mm(tmp_path, "--repo", str(cli_repo), "import", str(folder), "--model", "m",
               timeout=60)  # fmt: skip
    _refused_once(proc, str(folder / "pipe.safetensors"), "is a FIFO, not a regular file")
    assert time.monotonic() - started < 30
    assert tree_state(cli_repo) == before


def test_a_named_fifo_and_a_named_link_to_a_device_are_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "pipe.bin")
    with pytest.raises(UserError, match="is a FIFO, not a regular file"):
        import_paths(ws, [tmp_path / "pipe.bin"], "m")
    (tmp_path / "zero.bin").symlink_to("/dev/zero")
    with pytest.raises(UserError, match="a character device, not a regular file"):
        import_paths(ws, [tmp_path / "zero.bin"], "m")


def test_a_file_swapped_for_a_fifo_after_listing_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 100)
    (listed,) = list_input(path)
    path.unlink()
    os.mkfifo(path)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            open_regular(path, listed.identity).close()
            outcome.append(None)
        except BaseException as e:  # handed to the test's thread
            outcome.append(e)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # a blocking open: release it so the run can end, then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("opening a FIFO blocked")
    assert isinstance(outcome[0], UserError)
    assert "is a FIFO now, not a regular file" in str(outcome[0])


def test_a_unix_socket_is_refused(ws: Workspace, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "s"))
        with pytest.raises(UserError, match="is a socket, not a regular file"):
            import_paths(ws, [folder], "m")
    assert ws.repo.version_numbers("m") == []


def test_a_linked_folder_inside_is_imported_and_one_outside_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    folder = _model_folder(tmp_path)
    (folder / "shards").mkdir()
    (folder / "shards" / "a.bin").write_bytes(b"shard a")
    (folder / "current").symlink_to("shards", target_is_directory=True)
    result = import_paths(ws, [folder], "m")
    names = sorted(f.path for f in result.manifest.files)
    assert names == ["config.json", "current/a.bin", "model.safetensors", "shards/a.bin"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.bin").write_bytes(b"outside")
    (folder / "more").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UserError) as info:
        import_paths(ws, [folder], "m")
    assert f"{folder / 'more'}: is a link to {elsewhere}, outside {folder}" in str(info.value)
    assert ws.repo.version_numbers("m") == [1]


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda f: (f / "loop").symlink_to(".", target_is_directory=True), "a link loop"),
        (lambda f: (f / "sub").mkdir() or (f / "sub" / "up").symlink_to(".."), "a link loop"),
        (lambda f: (f / "a").symlink_to("b") or (f / "b").symlink_to("a"), "a link loop"),
    ],
    ids=["link to the folder itself", "link to its parent", "two links to each other"],
)
def test_link_loops_are_refused(ws: Workspace, tmp_path: Path, make, why: str) -> None:  # type: ignore[no-untyped-def]
    folder = _model_folder(tmp_path)
    make(folder)
    started = time.monotonic()
    with pytest.raises(UserError, match=why):
        import_paths(ws, [folder], "m", symlinks="follow")
    with pytest.raises(UserError, match=why):
        import_paths(ws, [folder], "m")
    assert time.monotonic() - started < 5
    assert ws.repo.version_numbers("m") == []


def test_folders_linked_many_times_over_are_refused_with_the_count(
    ws: Workspace, tmp_path: Path
) -> None:
    """Each level links twice to the next: 2**30 paths, a few hundred inodes."""
    folder = tmp_path / "m"
    levels = [folder / f"l{i}" for i in range(30)]
    for level in levels:
        level.mkdir(parents=True)
    for here, below in itertools.pairwise(levels):
        (here / "x").symlink_to(below, target_is_directory=True)
        (here / "y").symlink_to(below, target_is_directory=True)
    (levels[-1] / "w.bin").write_bytes(b"w")
    started = time.monotonic()
    with pytest.raises(UserError, match=f"a folder links already lead to {MAX_LINKED} times"):
        import_paths(ws, [folder], "m")
    assert time.monotonic() - started < 2


def test_a_folder_with_more_entries_than_the_limit_is_refused_with_the_count(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelmanager.core.localfiles.MAX_ENTRIES", 50)
    folder = tmp_path / "m"
    folder.mkdir()
    for i in range(51):
        (folder / f"{i}.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="holds more than 50 files and folders"):
        import_paths(ws, [folder], "m")


def test_a_named_link_is_followed_to_a_regular_file_unless_links_are_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    folder = _model_folder(tmp_path)
    link = tmp_path / "chosen.safetensors"
    link.symlink_to(folder / "model.safetensors")
    result = import_paths(ws, [link], "m")
    assert [f.path for f in result.manifest.files] == ["chosen.safetensors"]
    with pytest.raises(UserError, match="links are refused"):
        import_paths(ws, [link], "m", symlinks="refuse")
    (tmp_path / "gone").symlink_to(tmp_path / "nothing")
    with pytest.raises(NotFoundError, match="broken link"):
        import_paths(ws, [tmp_path / "gone"], "m")


def test_a_name_that_is_not_utf8_is_refused_escaped(tmp_path: Path, cli_repo: Path) -> None:
    folder = _model_folder(tmp_path)
    bad = os.fsdecode(os.fsencode(folder) + b"/w\xff.bin")
    try:
        Path(bad).write_bytes(b"weights")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    before = tree_state(cli_repo)
    proc = _mm(tmp_path, "--repo", str(cli_repo), "import", str(folder), "--model", "m")
    line = _refused_once(proc, "not valid UTF-8")
    assert repr(os.fsencode(bad)) in line
    assert tree_state(cli_repo) == before


def test_adopt_never_reads_or_deletes_a_file_a_snapshot_links_to_outside_the_cache(
    ws: Workspace, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    hf = Store("huggingface", tmp_path / "hf")
    hf_cache(hf.root, src)
    precious = tmp_path / "precious.safetensors"
    write_safetensors(precious, {"w": random_weights(np.random.default_rng(9), (16, 16))})
    kept = precious.read_bytes()
    link = hf.root / "models--acme--tiny" / "snapshots" / REV2 / "model.safetensors"
    listed_inside = find_model(hf, f"acme/tiny@{REV2}")
    link.unlink()
    link.symlink_to(precious)

    # The listing turns the link into an error of its model: adopt refuses before reading.
    model = find_model(hf, f"acme/tiny@{REV2}")
    assert any(str(precious) in e and "outside the store" in e for e in model.errors)
    with pytest.raises(UserError, match="unreadable items"):
        adopt(ws, hf, model, "acme/tiny", remove_original=True)

    # A listing made before the link changed: import, read-back and removal refuse it too.
    stale = StoreModel(model.store, model.name, model.revision, model.refs,
                       [f if f.path != link else StoreFile(f.name, f.path, precious.stat().st_size,
                        precious.stat().st_mtime, (precious.stat().st_dev, precious.stat().st_ino),
                        True) for f in listed_inside.files])  # fmt: skip
    plan = removal_preview(hf, stale)
    assert precious not in plan.paths
    assert link not in plan.paths
    assert link in plan.outside
    with pytest.raises(UserError, match="outside"):
        adopt(ws, hf, stale, "acme/tiny", remove_original=True)
    assert precious.read_bytes() == kept
    assert link.is_symlink()
    assert ws.repo.version_numbers("acme/tiny") == []


def test_adopt_with_remove_original_through_the_command_line(
    tmp_path: Path, cli_repo: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    hf = tmp_path / "hf"
    weights = hf_cache(hf, src)
    snap = hf / "models--acme--tiny" / "snapshots" / REV2
    blob = (snap / "model.safetensors").resolve()
    args = ("--repo", str(cli_repo), "stores", "adopt", "Hugging Face cache", f"acme/tiny@{REV2}",
            "--remove-original")  # fmt: skip

    # A snapshot link pointing outside the cache: nothing adopted, nothing deleted.
    outside = tmp_path / "precious.safetensors"
    shutil.copyfile(blob, outside)
    (snap / "model.safetensors").unlink()
    (snap / "model.safetensors").symlink_to(outside)
    before = tree_state(cli_repo)
    proc = _mm(tmp_path, *args)
    _refused_once(proc, "unreadable items", "outside the store")
    assert outside.read_bytes() == weights["v2"]
    assert blob.exists()
    assert tree_state(cli_repo) == before

    # The cache as huggingface_hub writes it: adopted, read back, originals removed.
    (snap / "model.safetensors").unlink()
    (snap / "model.safetensors").symlink_to(Path("../../blobs") / blob.name)
    proc = _mm(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert "2 files read back and identical" in proc.stdout
    assert not blob.exists()
    assert not snap.exists()
    assert outside.exists()
    out = tmp_path / "out"
    assert _mm(tmp_path, "--repo", str(cli_repo), "export", "acme/tiny", str(out)).returncode == 0
    assert (out / "model.safetensors").read_bytes() == weights["v2"]


def test_a_fifo_in_a_store_is_an_error_of_its_model_never_opened(tmp_path: Path) -> None:
    plain = tmp_path / "plain" / "tiny"
    plain.mkdir(parents=True)
    write_safetensors(plain / "w.safetensors", {"w": np.ones((4, 4), np.float32)})
    os.mkfifo(plain / "pipe.safetensors")
    (model,) = Store("folder", tmp_path / "plain").models()
    assert [f.name for f in model.files] == ["w.safetensors"]
    assert model.errors == [f"{plain / 'pipe.safetensors'}: is a FIFO, not a regular file"]
