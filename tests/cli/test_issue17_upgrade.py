"""The in-place upgrade seen from the command line, on a repository the previous release wrote
(tests/data/format1, ModelManager 0.1.0): the first command upgrades it and says nothing about
it, and everything is there afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_env
from tests.support.builders import tree_bytes

DATA = Path(__file__).parent.parent / "data" / "format1"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(tmp_path / "repo"), *args],
        capture_output=True, text=True, env=subprocess_env(tmp_path), timeout=300,
    )  # fmt: skip


def test_the_first_command_upgrades_a_format_1_repository_without_a_word_on_stderr(
    tmp_path: Path,
) -> None:
    # Before the fix the upgrade printed two warnings with Python reprs
    # ("metadata copy not written during upgrade: CopyProblem(key='config.json', ...)"):
    # config.json, still unsealed, was surveyed before it was written in the last step.
    shutil.copytree(DATA / "repo", tmp_path / "repo")
    done = _cli(tmp_path, "ls")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads((tmp_path / "repo" / "config.json").read_bytes())["version"] == 2
    assert json.loads((tmp_path / "repo" / "meta" / "config.json").read_bytes())["version"] == 2
    done = _cli(tmp_path, "verify")
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    for ref, src in (("org/tiny@stable", "src1"), ("org/tiny@prod", "src2"), ("other@2", "src2")):
        out = tmp_path / "out" / ref.replace("/", "_")
        assert _cli(tmp_path, "export", ref, str(out)).returncode == 0
        assert tree_bytes(out) == tree_bytes(DATA / src), ref
