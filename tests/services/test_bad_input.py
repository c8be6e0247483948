"""Bad input: a clear error naming file and cause; the repository stays exactly as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelmanager.errors import FormatError, ModelManagerError, NotFoundError, UserError
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.builders import raw_safetensors, tree_state, write_safetensors


def _good(folder: Path) -> Path:
    return write_safetensors(folder / "good.safetensors", {"w": np.ones(1000, np.float32)})


def _truncated(folder: Path) -> Path:
    path = write_safetensors(folder / "t.safetensors", {"w": np.ones(1000, np.float32)})
    path.write_bytes(path.read_bytes()[:-100])
    return path


def _header_past_end(folder: Path) -> Path:
    return raw_safetensors(folder / "h.safetensors", b"{}", b"", length=1 << 20)


def _not_json(folder: Path) -> Path:
    return raw_safetensors(folder / "j.safetensors", b"{'single': quotes}")


def _overlap(folder: Path) -> Path:
    header = {
        "a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
        "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]},
    }
    return raw_safetensors(folder / "o.safetensors", header, b"\0" * 12)


def _out_of_range(folder: Path) -> Path:
    header = {"a": {"dtype": "U8", "shape": [64], "data_offsets": [0, 64]}}
    return raw_safetensors(folder / "r.safetensors", header, b"\0" * 8)


def _dtype_mismatch(folder: Path) -> Path:
    header = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    return raw_safetensors(folder / "d.safetensors", header, b"\0" * 8)


CASES: list[tuple[str, Callable[[Path], Path], type[ModelManagerError], str]] = [
    ("truncated", _truncated, FormatError, "run past the end of the data"),
    ("header length past the end", _header_past_end, FormatError, "runs past the end of the file"),
    ("non-JSON header", _not_json, FormatError, "not valid JSON"),
    ("overlapping offsets", _overlap, FormatError, "overlaps"),
    ("out-of-range offsets", _out_of_range, FormatError, "run past the end of the data"),
    ("dtype size does not match shape", _dtype_mismatch, FormatError, "needs 12 bytes"),
]


@pytest.mark.parametrize(("why", "make", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_in_a_folder_stores_nothing(
    ws: Workspace, tmp_path: Path, why: str, make: Callable[[Path], Path],
    error: type[ModelManagerError], message: str,
) -> None:  # fmt: skip
    # A first version exists; a folder with one good and one bad file must not touch it.
    first = tmp_path / "first"
    first.mkdir()
    import_paths(ws, [_good(first)], "m")
    before = tree_state(ws.repo.root)
    folder = tmp_path / "in"
    folder.mkdir()
    _good(folder)
    bad = make(folder)
    with pytest.raises(error) as info:
        import_paths(ws, [folder], "m")
    assert str(bad) in str(info.value)
    assert message in str(info.value)
    assert tree_state(ws.repo.root) == before
    assert ws.repo.version_numbers("m") == [1]
    assert [r.seq for r in ws.catalog.versions("m")] == [1]


def test_missing_input_is_named(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        import_paths(ws, [tmp_path / "nope.safetensors"], "m")
    assert "nope.safetensors" in str(info.value)


def test_dangling_link_in_a_folder_is_named(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _good(folder)
    (folder / "broken.bin").symlink_to(tmp_path / "gone")
    before = tree_state(ws.repo.root)
    with pytest.raises(NotFoundError, match=r"broken\.bin"):
        import_paths(ws, [folder], "m")
    assert tree_state(ws.repo.root) == before


def test_two_inputs_with_the_same_name_are_refused(ws: Workspace, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _good(a)
    _good(b)
    with pytest.raises(UserError, match=r"both be stored as 'good\.safetensors'"):
        import_paths(ws, [a / "good.safetensors", b / "good.safetensors"], "m")


def test_bad_model_name_and_label_are_refused(ws: Workspace, tmp_path: Path) -> None:
    good = _good(tmp_path)
    with pytest.raises(UserError, match="invalid model name"):
        import_paths(ws, [good], "../evil")
    with pytest.raises(UserError, match="invalid label"):
        import_paths(ws, [good], "m", labels=["Not OK"])
    assert ws.repo.model_names() == []


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_file_whose_reads_fail_is_named(ws: Workspace, tmp_path: Path) -> None:
    """Reading /proc/self/mem at offset 0 fails with EIO, for root too: a truly unreadable file."""
    folder = tmp_path / "in"
    folder.mkdir()
    _good(folder)
    (folder / "weights.bin").symlink_to("/proc/self/mem")
    before = tree_state(ws.repo.root)
    with pytest.raises(UserError) as info:  # followed on request: a link outside is refused
        import_paths(ws, [folder], "m", symlinks="follow")
    assert "weights.bin" in str(info.value)
    assert "cannot read" in str(info.value)
    assert tree_state(ws.repo.root) == before


@pytest.mark.skipif(not hasattr(os, "setuid"), reason="needs POSIX users")
def test_unreadable_file_is_named(tmp_path: Path) -> None:
    """Run as an unprivileged user (root reads anything), so permissions really apply."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    nobody = 65534
    try:
        subprocess.run([sys.executable, "-c", "pass"], user=nobody, check=True)
    except (PermissionError, subprocess.CalledProcessError):
        pytest.skip("this Python cannot be run by an unprivileged user (e.g. pyenv under /root)")
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"mm-perm-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o777)
    try:
        folder = work / "in"
        folder.mkdir(mode=0o777)
        _good(folder)
        secret = folder / "secret.bin"
        secret.write_bytes(b"x" * 100)
        secret.chmod(0o000)
        for p in (work, folder, folder / "good.safetensors"):
            os.chown(p, nobody, nobody)
        env = subprocess_env(work, HOME=str(work))
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        proc = subprocess.run(
            [sys.executable, "-m", "modelmanager", "--repo", str(work / "repo"), "init"],
            env=env, capture_output=True, text=True, user=nobody, group=nobody, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        proc = subprocess.run(
            [sys.executable, "-m", "modelmanager", "--repo", str(work / "repo"),
             "import", str(folder), "--model", "m"],
            env=env, capture_output=True, text=True, user=nobody, group=nobody, check=False,
        )  # fmt: skip
        assert proc.returncode == 2
        assert "secret.bin" in proc.stderr
        assert "permission denied" in proc.stderr.lower()
        assert len(proc.stderr.strip().splitlines()) == 1
        assert not (work / "repo" / "models").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
