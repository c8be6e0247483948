"""mm.checkout: a version's files in a per-user cache folder, made once, reused by its stamp,
hard-linked across versions, and never returned half made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import modelmanager as mm
from modelmanager import paths
from modelmanager.errors import ModelManagerError
from modelmanager.services import Workspace
from modelmanager.services.checkout import STAMP
from modelmanager.services.importing import import_paths
from tests.support.builders import hf_folder, tree_bytes


def _drop_pieces(ws: Workspace, chunk_ids: set[str]) -> None:
    for cid in chunk_ids:
        for _device, piece in ws.repo.chunks.piece_files(cid):
            Path(piece).unlink()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return hf_folder(tmp_path / "src" / "tiny", np.random.default_rng(7))


def test_checkout_holds_the_original_files_and_any_tool_reads_them(
    ws: Workspace, source: Path
) -> None:
    import_paths(ws, [source], "org/tiny", labels=("prod",))
    folder = mm.checkout("org/tiny@prod", repo=ws.repo.root)
    assert folder.is_relative_to(paths.cache_dir())
    assert tree_bytes(folder) == tree_bytes(source)
    assert not any(p.stat().st_mode & stat.S_IWUSR for p in folder.rglob("*") if p.is_file())
    shard = "model-00001-of-00002.safetensors"
    with safe_open(folder / shard, "np") as got, safe_open(source / shard, "np") as want:
        for name in want.keys():  # noqa: SIM118 - safe_open is not iterable
            np.testing.assert_array_equal(got.get_tensor(name), want.get_tensor(name))


def test_a_second_checkout_is_the_same_folder_by_its_stamp_not_by_reading(
    ws: Workspace, source: Path
) -> None:
    import_paths(ws, [source], "tiny")
    first = mm.checkout("tiny", repo=ws.repo.root)
    _drop_pieces(ws, ws.repo.resolve("tiny").chunk_ids())  # no chunk can be read any more
    assert mm.checkout("tiny", repo=ws.repo.root) == first
    assert tree_bytes(first) == tree_bytes(source)


def test_an_edited_or_removed_file_makes_the_checkout_again(ws: Workspace, source: Path) -> None:
    import_paths(ws, [source], "tiny")
    folder = mm.checkout("tiny", repo=ws.repo.root)
    config = folder / "config.json"
    config.chmod(0o644)
    config.write_text("{}")
    (folder / "tokenizer.json").unlink()
    assert mm.checkout("tiny", repo=ws.repo.root) == folder
    assert tree_bytes(folder) == tree_bytes(source)


def test_files_unchanged_between_versions_are_hard_links(ws: Workspace, source: Path) -> None:
    import_paths(ws, [source], "tiny")
    (source / "config.json").write_text('{"hidden_size": 65}')
    import_paths(ws, [source], "tiny")
    one = mm.checkout("tiny@1", repo=ws.repo.root)
    two = mm.checkout("tiny@2", repo=ws.repo.root)
    assert tree_bytes(two) == tree_bytes(source)
    for p in one.rglob("*"):
        if p.is_file():
            shared = os.path.samefile(p, two / p.relative_to(one))
            assert shared == (p.name != "config.json"), p.name


def test_an_interrupted_checkout_is_never_returned_as_complete(ws: Workspace, source: Path) -> None:
    import_paths(ws, [source], "tiny")
    manifest = ws.repo.resolve("tiny")
    last = manifest.files[-1]
    lost = {last.chunks[-1].id} - {c.id for f in manifest.files[:-1] for c in f.chunks}
    assert lost
    saved = {}
    for cid in lost:
        for _device, piece in ws.repo.chunks.piece_files(cid):
            saved[Path(piece)] = Path(piece).read_bytes()
    _drop_pieces(ws, lost)  # the export fails on the version's last file
    with pytest.raises(ModelManagerError):
        mm.checkout("tiny", repo=ws.repo.root)
    model_dir = next((paths.cache_dir() / "checkouts").iterdir()).iterdir()
    assert [p.name for p in next(model_dir).iterdir()] == ["locks"]  # no folder, no temporary
    for piece, data in saved.items():
        piece.write_bytes(data)
    killed = next(next((paths.cache_dir() / "checkouts").iterdir()).iterdir()) / ".v1.99.x.tmp"
    (killed / "sub").mkdir(parents=True)  # what a killed checkout leaves: removed by the next
    folder = mm.checkout("tiny", repo=ws.repo.root)
    assert not killed.exists()
    assert tree_bytes(folder) == tree_bytes(source)
    # a folder in place without its stamp (a stop between the rename and the stamp): made again
    folder.with_name(folder.name + STAMP).unlink()
    (folder / "config.json").chmod(0o644)
    (folder / "config.json").write_text("half")
    assert tree_bytes(mm.checkout("tiny", repo=ws.repo.root)) == tree_bytes(source)


def test_checkouts_asked_at_once_make_one_folder(ws: Workspace, source: Path) -> None:
    """Two processes asking together: one makes it, the other waits and returns it as is."""
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    import_paths(ws, [source], "tiny")
    code = (f"import modelmanager as mm; p = mm.checkout('tiny', repo={str(ws.repo.root)!r}); "
            "print(p, p.joinpath('config.json').stat().st_ino)")  # fmt: skip
    env = subprocess_env(Path(paths.cache_dir()).parent)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]  # fmt: skip
    outs = {p.communicate(timeout=120)[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outs) == 1  # the same folder, the same files (no second copy made over it)
    folder = Path(outs.pop().split()[0])
    assert tree_bytes(folder) == tree_bytes(source)
