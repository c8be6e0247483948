"""Run the real ``modelmanager`` command in a child process, as a user's shell does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_env


def run_mm(tmp_path: Path, *args: str, repo: Path | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``modelmanager [--repo REPO] ARGS`` with the test's own HOME, cache and data folders
    (``subprocess_env``); ``repo`` defaults to ``tmp_path / "repo"``."""
    where = repo if repo is not None else tmp_path / "repo"
    return subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(where), *args],
        capture_output=True, text=True, env=subprocess_env(tmp_path), timeout=timeout,
    )  # fmt: skip
