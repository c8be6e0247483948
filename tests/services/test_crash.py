"""Crash safety: an import killed at any moment leaves a valid repository and no partial version."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core import faults
from modelmanager.core.repo.changes import pending_models
from modelmanager.services import Workspace, history, init_repository, open_workspace
from modelmanager.services.exporting import export_ref
from modelmanager.services.maintenance import collect_garbage, verify
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, tree_bytes, write_safetensors


def _source(tmp_path: Path, seed: int = 11) -> Path:
    """A 24 MiB model folder: enough chunks (256 KiB each) to be killed half way through."""
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i}.weight": random_weights(rng, (1024, 256)) for i in range(24)}
    folder = tmp_path / f"src{seed}"
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text('{"architectures": ["X"]}')
    return folder


def _import_cmd(repo: Path, src: Path) -> list[str]:
    return [sys.executable, "-m", "modelmanager", "--repo", str(repo), "import", str(src),
            "--model", "crashy", "--label", "prod"]  # fmt: skip


def _check_consistent(repo: Path, src: Path | dict[int, Path], out: Path) -> list[int]:
    """Verify passes, the catalog lists exactly the committed versions, each exports exactly.

    ``src`` is the folder every version was imported from, or a map version -> folder.
    """
    ws = open_workspace(repo)
    try:
        report = verify(ws)
        assert report.ok, report.problems
        seqs = ws.repo.version_numbers("crashy")
        listed = [r.seq for r in ws.catalog.versions("crashy")] if seqs else []
        assert sorted(listed) == seqs
        for seq in seqs:
            folder = src[seq] if isinstance(src, dict) else src
            export_ref(ws, f"crashy@{seq}", out / str(seq), force=True)
            assert tree_bytes(out / str(seq)) == tree_bytes(folder)
        return seqs
    finally:
        ws.close()


@pytest.mark.slow
def test_import_killed_at_20_random_moments(tmp_path: Path) -> None:
    # Every attempt imports new content, so no attempt is shortened by dedup and the random
    # kill times (drawn from a full import's duration) land inside real imports.
    repo = tmp_path / "repo"
    init_repository(repo, chunk_size=256 * 1024, group_size=16 * 1024).close()
    env = subprocess_env(tmp_path)
    sources = {1: _source(tmp_path, 0)}
    start = time.monotonic()
    subprocess.run(_import_cmd(repo, sources[1]), env=env, check=True, capture_output=True)
    duration = time.monotonic() - start
    rng = random.Random(20261123)
    outcomes = {"killed": 0, "finished": 0}
    for attempt in range(1, 21):
        src = _source(tmp_path, attempt)
        before = len(_check_consistent(repo, sources, tmp_path / f"pre{attempt}"))
        with subprocess.Popen(
            _import_cmd(repo, src), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as proc:
            time.sleep(rng.uniform(0.05, duration))
            proc.kill()
            code = proc.wait()
        outcomes["finished" if code == 0 else "killed"] += 1
        seqs = ws_versions(repo)
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) in (before, before + 1)  # a version appears whole, or not at all
        if len(seqs) == before + 1:
            sources[seqs[-1]] = src
        _check_consistent(repo, sources, tmp_path / f"out{attempt}")
    assert outcomes["killed"] >= 10, outcomes  # most kills must land mid-import to mean anything
    # The next import succeeds, and gc leaves a repository whose every version still exports.
    final = _source(tmp_path, 99)
    subprocess.run(_import_cmd(repo, final), env=env, check=True, capture_output=True)
    sources[max(sources) + 1] = final
    ws = open_workspace(repo)
    collect_garbage(ws)
    ws.close()
    assert _check_consistent(repo, sources, tmp_path / "final") == sorted(sources)


def ws_versions(repo: Path) -> list[int]:
    ws = open_workspace(repo)
    try:
        return ws.repo.version_numbers("crashy")
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("event", "version_survives"),
    [
        ("chunk-written:5", False),
        ("before-manifest", False),
        ("after-manifest", True),
        ("after-label-journal", True),
        ("after-labels", True),
        ("after-catalog", True),
    ],
)
def test_import_killed_at_each_durability_boundary(
    tmp_path: Path, event: str, version_survives: bool
) -> None:
    src = _source(tmp_path)
    repo = tmp_path / "repo"
    init_repository(repo, chunk_size=256 * 1024, group_size=16 * 1024).close()
    env = subprocess_env(tmp_path, **{faults.ENV_CRASH_AT: event})
    proc = subprocess.run(_import_cmd(repo, src), env=env, capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr  # it really died there, by SIGKILL
    seqs = _check_consistent(repo, src, tmp_path / "out")
    assert seqs == ([1] if version_survives else [])
    ws: Workspace = open_workspace(repo)
    killed_in = pending_models(repo)  # what the killed writer was changing
    if event == "after-label-journal":
        # The move is decided (journalled) but its record was not written: not damage, so
        # verify passed above; the next writer finishes it before doing anything else.
        assert ws.repo.read_labels("crashy") == {}
    with ws.repo.writer():
        assert ws.repo.read_labels("crashy") == (
            {} if event == "after-manifest" or not version_survives else {"prod": 1}
        )
    assert ws.repo.metadata_problems(copies=True) == []
    # That writer settled what the killed one left pending: no later writer checks it again.
    assert (killed_in, pending_models(repo)) == (
        {"crashy"} if event != "chunk-written:5" else set(),
        set(),
    )
    if version_survives and event != "after-manifest":
        assert ws.repo.read_labels("crashy") == {"prod": 1}
    subprocess.run(_import_cmd(repo, src), env=subprocess_env(tmp_path), check=True,
                   capture_output=True)  # fmt: skip
    assert [r.name for r in history.list_models(ws)] == ["crashy"]
    ws.close()
    assert _check_consistent(repo, src, tmp_path / "again")[-1] == (2 if version_survives else 1)
