"""Running out of memory is one line and exit 2, never a traceback (issue 15)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from modelmanager.cli import main, versions
from modelmanager.errors import EXIT_USAGE


def test_memory_error_anywhere_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def exhausted(_args: argparse.Namespace) -> int:
        raise MemoryError

    monkeypatch.setattr(versions, "cmd_ls", exhausted)
    assert main.main(["--repo", str(tmp_path), "ls"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("modelmanager: error: out of memory")
