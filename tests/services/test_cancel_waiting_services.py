"""Cancel means cancel outside a lane too: a service called with its own ``ctx`` (the command
line, a script) that is cancelled while it waits for another process's writer lock writes
nothing and stops at once, not when the lock timeout runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.codecs import CodecSettings
from modelmanager.core.jobs import JobContext
from modelmanager.errors import Cancelled
from modelmanager.services import Workspace
from modelmanager.services.devices import add_device, remove_device
from modelmanager.services.history import remove_versions
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage
from modelmanager.services.pinning import pin
from modelmanager.services.policies import set_policy
from modelmanager.services.recompress import recompress
from modelmanager.services.redundancy import rebalance, repair
from modelmanager.services.remotes import RemoteSpec, open_remote, pull, push
from tests.conftest import subprocess_env
from tests.support.builders import small_model, tree_state, write_safetensors
from tests.support.lock_holder import writer_lock_held

#: Far longer than the test may take: a service that does not hear the cancel hits it.
WAIT = 20.0

Call = Callable[[Workspace, JobContext, Path], object]


def _remote(tmp_path: Path) -> RemoteSpec:
    return RemoteSpec("r", (tmp_path / "remote").as_uri())


def _pull(ws: Workspace, ctx: JobContext, tmp_path: Path) -> object:
    return pull(ws, open_remote(_remote(tmp_path)), "other@1", ctx=ctx, lock_timeout=WAIT)


CALLS: dict[str, Call] = {
    "set_policy": lambda ws, ctx, _t: set_policy(ws, "copies=2", ctx=ctx, lock_timeout=WAIT),
    "remove_device": lambda ws, ctx, _t: remove_device(ws, "spare", drain=False, force=True,
                                                       ctx=ctx, lock_timeout=WAIT),
    "collect_garbage": lambda ws, ctx, _t: collect_garbage(ws, ctx=ctx, lock_timeout=WAIT),
    "recompress": lambda ws, ctx, _t: recompress(ws, "m@1", CodecSettings("raw"), ctx=ctx,
                                                 lock_timeout=WAIT),
    "push": lambda ws, ctx, t: push(ws, "m@1", open_remote(_remote(t)), ctx=ctx,
                                    lock_timeout=WAIT),
    "pull": _pull,
    "repair": lambda ws, ctx, _t: repair(ws, ctx=ctx, lock_timeout=WAIT),
    "rebalance": lambda ws, ctx, _t: rebalance(ws, ctx=ctx, lock_timeout=WAIT),
    "pin": lambda ws, ctx, _t: pin(ws, "m@1", ctx=ctx, lock_timeout=WAIT),
    "remove_versions": lambda ws, ctx, _t: remove_versions(ws, ["m@1"], ctx=ctx, lock_timeout=WAIT),
    "import": lambda ws, ctx, t: import_paths(ws, [t / "src"], "m", ctx=ctx, lock_timeout=WAIT),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_service_cancelled_while_waiting_for_the_lock_writes_nothing(
    ws: Workspace, tmp_path: Path, name: str
) -> None:
    source = write_safetensors(tmp_path / "src" / "model.safetensors",
                               small_model(np.random.default_rng(0)))  # fmt: skip
    import_paths(ws, [source], "m")
    add_device(ws, tmp_path / "spare")
    import_paths(ws, [source], "other")
    push(ws, "other@1", open_remote(_remote(tmp_path)))  # what the pull case fetches
    ctx = JobContext()
    told: list[str] = []

    def cancel_once_waiting(text: str) -> None:
        told.append(text)
        ctx.cancel()

    with writer_lock_held(ws.repo.root, subprocess_env(tmp_path)) as holder:
        before = tree_state(ws.repo.root)
        ws.repo.lock.notify = cancel_once_waiting  # told when a take of the lock has to wait
        start = time.monotonic()
        with pytest.raises(Cancelled):
            CALLS[name](ws, ctx, tmp_path)
        took = time.monotonic() - start
        ws.repo.lock.notify = None
        assert told
        assert "waiting for the writer lock" in told[0]
        assert not ws.repo.lock.held
        assert tree_state(ws.repo.root) == before
        holder.release()
    assert took < WAIT / 2, f"{name} waited {took:.1f} s after its cancel"
