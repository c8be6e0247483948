"""Cancel means cancel: a write waiting for another process's writer lock writes nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.jobs import JobContext
from modelmanager.core.lanes import Lanes
from modelmanager.errors import Cancelled
from modelmanager.services import Workspace, history
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.builders import small_model, tree_state, write_safetensors
from tests.support.lock_holder import writer_lock_held


def _model(tmp_path: Path, name: str, seed: int) -> Path:
    return write_safetensors(
        tmp_path / name / "model.safetensors", small_model(np.random.default_rng(seed))
    )


def test_an_import_cancelled_while_waiting_for_the_lock_writes_nothing(
    ws: Workspace, tmp_path: Path
) -> None:
    import_paths(ws, [_model(tmp_path, "m", 0)], "m")
    source = _model(tmp_path, "n", 1)
    lanes = Lanes()
    waiting = threading.Event()
    with writer_lock_held(ws.repo.root, subprocess_env(tmp_path)) as holder:
        before = tree_state(ws.repo.root)
        job = lanes.submit(
            lambda ctx: import_paths(ws, [source], "m", ctx=ctx, lock_timeout=600),
            writes=ws.repo.root,
            on_wait=lambda text: waiting.set() if text else None,
        )
        assert waiting.wait(30), "the import never said it waits for the lock"
        assert not job.cancel()  # running (waiting), so not dropped: its flag is set
        # It ends while the other process still holds the lock: the wait heard the cancel.
        assert isinstance(job.future.exception(timeout=30), Cancelled)
        assert job.waiting_for == ""
        holder.release()
    assert tree_state(ws.repo.root) == before
    assert [v.seq for v in history.log(ws, "m")] == [1]
    lanes.shutdown()
    with ws.repo.writer(timeout=0):  # the lock is free: the cancelled job did not keep it
        pass


def test_the_writer_context_watches_the_context_it_is_given(ws: Workspace, tmp_path: Path) -> None:
    """Outside a lane (the command line, a test) ``writer(ctx=...)`` hears the cancel too."""
    ctx = JobContext()
    waits: list[str] = []
    with writer_lock_held(ws.repo.root, subprocess_env(tmp_path)):
        before = tree_state(ws.repo.root)

        def cancel_once_waiting(text: str) -> None:
            waits.append(text)
            ctx.cancel()

        with pytest.raises(Cancelled), ws.repo.writer(600, cancel_once_waiting, ctx=ctx):
            raise AssertionError("the lock was taken although the job was cancelled")
        assert not ws.repo.lock.held
        assert tree_state(ws.repo.root) == before
    assert "waiting for the writer lock held by process" in waits[0]
