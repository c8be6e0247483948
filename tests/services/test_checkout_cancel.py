"""A checkout cancelled while another process makes the same model's checkout stops at once and
makes nothing (it used to wait up to an hour for that process, its cancel unheard)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.jobs import JobContext
from modelmanager.errors import Cancelled
from modelmanager.services import Workspace, checkout
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.builders import small_model, write_safetensors

HOLD = """
import sys
from pathlib import Path
from modelmanager.core.repo.lock import WriterLock
lock = WriterLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_cancelled_checkout_does_not_wait_for_another_process(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_safetensors(tmp_path / "src" / "model.safetensors",
                               small_model(np.random.default_rng(0)))  # fmt: skip
    import_paths(ws, [source], "m")
    monkeypatch.setattr(checkout, "LOCK_WAIT", 20.0)  # without the cancel heard: LockedError
    locks = checkout._model_dir(ws, "m") / "locks"
    locks.mkdir(parents=True)
    with subprocess.Popen([sys.executable, "-c", HOLD, str(locks)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True,
                          env=subprocess_env(tmp_path)) as holder:  # fmt: skip
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        try:
            ctx = JobContext()
            ctx.cancel()  # a job cancelled before (or while) it waits for that process
            start = time.monotonic()
            with pytest.raises(Cancelled):
                checkout.checkout(ws, "m@1", ctx)
            assert time.monotonic() - start < 10
            assert sorted(p.name for p in locks.parent.iterdir()) == ["locks"]  # nothing made
        finally:
            holder.kill()
