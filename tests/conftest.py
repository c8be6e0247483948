"""Shared fixtures: every test gets its own data, cache and repository folders."""

from __future__ import annotations

import os

# Qt aborts the whole test process without a display unless told to draw offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmanager import paths
from modelmanager.core import faults
from modelmanager.services import Workspace, init_repository

#: Small chunk sizes so tests exercise splitting and grouping with little data.
TEST_CHUNK = 64 * 1024
TEST_GROUP = 4 * 1024


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redirect every default location into the test's own folder."""
    monkeypatch.setenv(paths.ENV_DATA, str(tmp_path / "data"))
    monkeypatch.setenv(paths.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(paths.ENV_REPO, raising=False)
    monkeypatch.delenv(faults.ENV_CRASH_AT, raising=False)
    # Model stores of other tools (issue 10): never this machine's own.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh repository with small chunks."""
    workspace = init_repository(tmp_path / "repo", chunk_size=TEST_CHUNK, group_size=TEST_GROUP)
    yield workspace
    workspace.close()


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for running modelmanager in a child process, isolated like the tests."""
    env = dict(os.environ)
    env.update({paths.ENV_DATA: str(tmp_path / "data"), paths.ENV_CACHE: str(tmp_path / "cache")})
    env.pop(paths.ENV_REPO, None)
    env.pop(faults.ENV_CRASH_AT, None)
    env.update(extra)
    return env
