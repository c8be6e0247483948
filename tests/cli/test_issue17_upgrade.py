"""The in-place upgrade seen from the command line, on a repository the previous release wrote
(tests/data/format1, ModelManager 0.1.0): the first command upgrades it and says nothing about
it, and everything is there afterwards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.builders import tree_bytes
from tests.support.commands import run_mm

DATA = Path(__file__).parent.parent / "data" / "format1"


def test_the_first_command_upgrades_a_format_1_repository_without_a_word_on_stderr(
    tmp_path: Path,
) -> None:
    # Before the fix the upgrade printed two warnings with Python reprs
    # ("metadata copy not written during upgrade: CopyProblem(key='config.json', ...)"):
    # config.json, still unsealed, was surveyed before it was written in the last step.
    shutil.copytree(DATA / "repo", tmp_path / "repo")
    done = run_mm(tmp_path, "ls")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads((tmp_path / "repo" / "config.json").read_bytes())["version"] == 2
    assert json.loads((tmp_path / "repo" / "meta" / "config.json").read_bytes())["version"] == 2
    done = run_mm(tmp_path, "verify")
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    for ref, src in (("org/tiny@stable", "src1"), ("org/tiny@prod", "src2"), ("other@2", "src2")):
        out = tmp_path / "out" / ref.replace("/", "_")
        assert run_mm(tmp_path, "export", ref, str(out)).returncode == 0
        assert tree_bytes(out) == tree_bytes(DATA / src), ref
