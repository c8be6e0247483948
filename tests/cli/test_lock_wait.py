"""A command that finds another process writing waits for it, says who it is, and stops on Ctrl+C;
a writer that died leaves nothing to wait for. Real CLI processes, a real lock holder."""

from __future__ import annotations

import math
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from modelmanager.cli.main import build_parser
from modelmanager.errors import EXIT_CANCELLED, EXIT_LOCKED
from modelmanager.services import init_repository, open_workspace
from modelmanager.services.importing import import_paths
from tests.conftest import TEST_CHUNK, TEST_GROUP, subprocess_env
from tests.support.builders import small_model, write_safetensors
from tests.support.lock_holder import writer_lock_held


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding m@1 and m@2."""
    ws = init_repository(tmp_path / "repo", chunk_size=TEST_CHUNK, group_size=TEST_GROUP)
    try:
        for seed in (1, 2):
            src = tmp_path / f"src{seed}" / "model.safetensors"
            import_paths(ws, [write_safetensors(src, small_model(np.random.default_rng(seed)))],
                         "m")  # fmt: skip
    finally:
        ws.close()
    return ws.repo.root


def _start(repo: Path, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "modelmanager", "--repo", str(repo), *args],
        env=subprocess_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_notice(proc: subprocess.Popen[str]) -> str:
    """The line in which ``proc`` says it waits for the writer lock (read from its stderr)."""
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if sel.select(timeout=1):
            line = proc.stderr.readline()
            assert line, f"exited {proc.wait()} without waiting"
            if "waiting for the writer lock" in line:
                return line
    raise AssertionError("no waiting notice within a minute")


def _labels(repo: Path) -> dict[str, int]:
    ws = open_workspace(repo)
    try:
        return ws.repo.read_labels("m")
    finally:
        ws.close()


def test_by_default_a_write_waits_for_the_writer_and_says_who_it_is(
    repo: Path, tmp_path: Path
) -> None:
    assert build_parser().parse_args(["label", "m@1", "prod"]).wait == math.inf
    with writer_lock_held(repo, subprocess_env(tmp_path)) as holder:
        proc = _start(repo, tmp_path, "label", "m@1", "prod")
        notice = _wait_notice(proc)
        assert f"process {holder.proc.pid} on {socket.gethostname()}" in notice
        assert "Ctrl+C" in notice
        assert proc.poll() is None  # still waiting, not given up
        holder.release()
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _labels(repo) == {"prod": 1}


def test_a_writer_killed_while_holding_the_lock_leaves_nothing_to_wait_for(
    repo: Path, tmp_path: Path
) -> None:
    with writer_lock_held(repo, subprocess_env(tmp_path)) as holder:
        proc = _start(repo, tmp_path, "label", "m@2", "prod")
        _wait_notice(proc)
        holder.proc.kill()  # SIGKILL: no release, the OS drops the lock with the process
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _labels(repo) == {"prod": 2}
    # The holder's record names a process that is gone: the next writer does not wait at all.
    proc = _start(repo, tmp_path, "--wait", "0", "label", "m@1", "prod")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _labels(repo) == {"prod": 1}


def test_ctrl_c_stops_the_wait_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    with writer_lock_held(repo, subprocess_env(tmp_path)):
        proc = _start(repo, tmp_path, "rm", "m@1")
        _wait_notice(proc)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_CANCELLED, err
    assert "Traceback" not in err
    ws = open_workspace(repo)
    try:
        assert ws.repo.version_numbers("m") == [1, 2]
    finally:
        ws.close()


def test_a_bounded_wait_ends_in_one_line_naming_the_holder(repo: Path, tmp_path: Path) -> None:
    with writer_lock_held(repo, subprocess_env(tmp_path)) as holder:
        proc = _start(repo, tmp_path, "--wait", "0.3", "label", "m@1", "prod")
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_LOCKED, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("modelmanager: error: ")
    assert f"process {holder.proc.pid}" in last
    assert "Traceback" not in err
