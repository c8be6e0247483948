"""``modelmanager recover``: main deleted entirely, rebuilt from the devices by the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.history import set_label
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, tree_bytes, write_safetensors

CHUNK = 4096


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmanager", *args],
        capture_output=True, text=True, env=subprocess_env(tmp_path), timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("lost", [0, 2])
def test_recover_after_main_is_deleted_brings_back_every_version_and_label(
    tmp_path: Path, lost: int
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    roots = [tmp_path / f"dev{i}" for i in range(6)]
    for i, root in enumerate(roots):
        add_device(ws, root, name=f"d{i}")
    set_policy(ws, "ec=4+2")
    set_device(ws, "main", state="offline")  # main holds metadata only: all data on devices
    sources = {}
    for seed, ref in enumerate(["org/m@1", "org/m@2", "n@1"]):
        rng = np.random.default_rng(seed)
        src = tmp_path / f"src{seed}"
        tensors = {f"t{i}": random_weights(rng, (CHUNK // 2,)) for i in range(4)}
        write_safetensors(src / "model.safetensors", tensors)
        (src / "config.json").write_text('{"architectures": ["Tiny"]}')
        import_paths(ws, [src], ref.split("@")[0], labels=["prod"] if seed == 1 else [])
        sources[ref] = src
    set_label(ws, "org/m@1", "stable")
    shutil.rmtree(ws.repo.root)
    for root in roots[:lost]:
        shutil.rmtree(root)

    new = tmp_path / "new"
    proc = _cli(tmp_path, "recover", str(new), "--from", *map(str, roots[lost:]), "--json")
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert (report["models"], report["versions"], report["labels"]) == (2, 3, 2)
    assert report["devices_offline"] == [f"d{i}" for i in range(lost)]
    assert report["damaged"] == []
    # With every device, repair finds the policy met; with two gone, ec=4+2 cannot place six
    # fragments on four devices, so it says so (exit 1) and keeps what it has.
    assert proc.returncode == (0 if lost == 0 else 1), proc.stdout

    labels = json.loads(_cli(tmp_path, "--repo", str(new), "log", "org/m", "--json").stdout)
    assert sorted(label for row in labels for label in row["labels"]) == ["prod", "stable"]
    for ref, src in sources.items():
        out = tmp_path / "out" / ref.replace("/", "_")
        done = _cli(tmp_path, "--repo", str(new), "export", ref, str(out))
        assert done.returncode == 0, done.stderr
        assert tree_bytes(out) == tree_bytes(src), ref
    assert _cli(tmp_path, "--repo", str(new), "verify").returncode == 0


def test_recover_refuses_a_folder_that_is_not_a_device_and_a_non_empty_destination(
    tmp_path: Path,
) -> None:
    (tmp_path / "junk").mkdir()
    proc = _cli(tmp_path, "recover", str(tmp_path / "new"), "--from", str(tmp_path / "junk"))
    assert proc.returncode == 2
    assert "is not a device folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    proc = _cli(tmp_path, "recover", str(tmp_path / "full"), "--from", str(tmp_path / "junk"))
    assert proc.returncode == 2
    assert "is not empty" in proc.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_recover_into_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    add_device(ws, tmp_path / "dev0", name="d0")
    ws.close()
    (tmp_path / "a-file").write_text("not a folder")
    proc = _cli(tmp_path, "recover", str(tmp_path / "a-file" / "new"), "--from",
                str(tmp_path / "dev0"))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "cannot write the new repository folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pull_all_restores_every_model_version_and_label_a_remote_holds(tmp_path: Path) -> None:
    """The other way back from a lost repository: everything the remote holds, by ``pull
    --all``; run again, it moves nothing."""
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    sources = {}
    for seed, ref in enumerate(["org/m@1", "org/m@2", "n@1"]):
        src = tmp_path / f"src{seed}"
        rng = np.random.default_rng(seed)
        tensors = {f"t{i}": random_weights(rng, (CHUNK // 2,)) for i in range(3)}
        write_safetensors(src / "model.safetensors", tensors)
        import_paths(ws, [src], ref.split("@")[0], labels=["prod"] if seed == 0 else [])
        sources[ref] = src
    ws.close()
    remote = f"file://{tmp_path / 'shared'}"
    assert _cli(tmp_path, "remote", "add", "team", remote).returncode == 0
    for ref in sources:
        assert _cli(tmp_path, "--repo", str(tmp_path / "repo"), "push", ref, "team").returncode == 0

    new = tmp_path / "new"
    assert _cli(tmp_path, "init", str(new)).returncode == 0
    done = _cli(tmp_path, "--repo", str(new), "pull", "team", "--all", "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(r["ref"] for r in json.loads(done.stdout)) == sorted(sources)
    log = json.loads(_cli(tmp_path, "--repo", str(new), "log", "org/m", "--json").stdout)
    assert {row["version"]: row["labels"] for row in log} == {1: ["prod"], 2: []}
    for ref, src in sources.items():
        out = tmp_path / "out" / ref.replace("/", "_")
        assert _cli(tmp_path, "--repo", str(new), "export", ref, str(out)).returncode == 0
        assert tree_bytes(out) == tree_bytes(src), ref
    again = json.loads(_cli(tmp_path, "--repo", str(new), "pull", "team", "--all",
                            "--json").stdout)  # fmt: skip
    assert [r["manifest_written"] for r in again] == [False, False, False]
    assert _cli(tmp_path, "--repo", str(new), "pull", "team").returncode == 2  # neither given
