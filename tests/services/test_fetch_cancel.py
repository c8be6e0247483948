"""A load or export cancelled half way stops, and leaves no reader or decoder thread behind."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelmanager.core.jobs import JobContext
from modelmanager.errors import Cancelled
from modelmanager.services.exporting import export_ref
from modelmanager.services.loading import load_version
from tests.services.test_loading import _cluster


def _pipeline_threads() -> set[threading.Thread]:
    """The fetcher's reader (``mm-read-DEVICE``) and decoder threads alive now."""
    return {t for t in threading.enumerate() if t.name.startswith(("mm-decode", "mm-read-"))}


def _cancel_after_first_chunk() -> JobContext:
    ctx = JobContext()

    def progress(done: int, total: int, _text: str) -> None:
        if 0 < done < total:
            ctx.cancel()

    ctx.on_progress = progress
    return ctx


@pytest.mark.parametrize("policy", ["copies=2", "ec=2+1"])
def test_load_cancelled_half_way_stops_and_leaves_no_thread(tmp_path: Path, policy: str) -> None:
    ws = _cluster(tmp_path, policy, rows=256)
    before = _pipeline_threads()
    with pytest.raises(Cancelled):
        load_version(ws, "m", ctx=_cancel_after_first_chunk(), threads=1)  # work queues up
    assert _pipeline_threads() <= before
    assert load_version(ws, "m").bytes > 0  # and the next load runs as usual


def test_export_cancelled_half_way_leaves_no_file_and_no_thread(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "copies=2", rows=256)
    before = _pipeline_threads()
    with pytest.raises(Cancelled):
        export_ref(ws, "m", tmp_path / "out", ctx=_cancel_after_first_chunk())
    assert _pipeline_threads() <= before
    assert not (tmp_path / "out" / "model.safetensors").exists()
