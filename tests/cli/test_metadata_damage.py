"""The four kinds of metadata damage that used to turn maintenance into deletion, through the
real CLI: a chunk id changed in a manifest, a deleted manifest, a policy lowered by one byte, a
deleted device list. After each, gc, rm and repair delete nothing, verify names the file,
repair heals it from a copy, and every version exports exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelmanager.services import init_repository
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from tests.support.builders import random_weights, tree_bytes, write_safetensors
from tests.support.commands import run_mm

CHUNK = 4096


def _pieces(tmp_path: Path) -> set[Path]:
    roots = [tmp_path / "repo", tmp_path / "dev0", tmp_path / "dev1"]
    return {p for r in roots for folder in ("chunks", "fragments")
            for p in (r / folder).rglob("*") if p.is_file()}  # fmt: skip


def _flip_chunk_id(repo: Path) -> Path:
    path = repo / "models" / "m" / "versions" / "00000001.json"
    text = path.read_text()
    start = text.index('"chunks":[["') + len('"chunks":[["')
    digit = text[start]
    path.write_text(text[:start] + ("0" if digit != "0" else "1") + text[start + 1 :])
    return path


def _delete_manifest(repo: Path) -> Path:
    path = repo / "models" / "m" / "versions" / "00000001.json"
    path.unlink()
    return path


def _lower_policy(repo: Path) -> Path:
    path = repo / "policy.json"
    path.write_bytes(path.read_bytes().replace(b'"default":"copies=2"', b'"default":"copies=1"'))
    return path


def _delete_device_list(repo: Path) -> Path:
    path = repo / "devices.json"
    path.unlink()
    return path


@pytest.mark.parametrize(
    "damage", [_flip_chunk_id, _delete_manifest, _lower_policy, _delete_device_list]
)
def test_damaged_metadata_deletes_nothing_is_named_and_healed(
    tmp_path: Path, damage: Callable[[Path], Path]
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    for i in range(2):
        add_device(ws, tmp_path / f"dev{i}", name=f"d{i}")
    set_policy(ws, "copies=2")
    sources = {}
    for seed, ref in enumerate(["m@1", "m@2", "n@1"]):
        rng = np.random.default_rng(seed)
        src = tmp_path / f"src{seed}"
        tensors = {f"t{i}": random_weights(rng, (CHUNK // 2,)) for i in range(4)}
        write_safetensors(src / "model.safetensors", tensors)
        import_paths(ws, [src], ref.split("@")[0], labels=["prod"] if seed == 0 else [])
        sources[ref] = src
    ws.close()
    pieces = _pieces(tmp_path)
    damaged = damage(tmp_path / "repo")

    done = run_mm(tmp_path, "verify")
    assert done.returncode == 1, done.stderr
    assert str(damaged) in done.stderr
    for command in (["gc"], ["rm", "m@1", "--force"], ["rebalance"]):
        done = run_mm(tmp_path, *command)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "fail their check" in done.stderr
        assert str(damaged) in done.stderr
    assert _pieces(tmp_path) == pieces  # nothing deleted

    done = run_mm(tmp_path, "repair")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _pieces(tmp_path) == pieces  # healed from the copies: no piece added or removed
    assert damaged.is_file()
    done = run_mm(tmp_path, "verify")
    assert done.returncode == 0, done.stderr
    for ref, src in sources.items():
        out = tmp_path / "out" / ref
        assert run_mm(tmp_path, "export", ref, str(out)).returncode == 0
        assert tree_bytes(out) == tree_bytes(src), ref
    assert "prod" in run_mm(tmp_path, "log", "m").stdout
