"""Progress of files of 2 GiB or more reaches the window whole (issue 19: 32-bit signals)."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from modelmanager.core.jobs import JobContext
from modelmanager.gui.jobs_bridge import JobRunner

DONE, TOTAL = 3 << 30, 5 << 30  # past the 2**31 a C++ int holds


def test_progress_past_two_gib_arrives_exactly(qtbot) -> None:  # type: ignore[no-untyped-def]
    runner = JobRunner()
    release = threading.Event()

    def work(ctx: JobContext) -> None:
        ctx.report(DONE, TOTAL, "shard-00001-of-00002.safetensors")
        release.wait(30)

    job = runner.submit("Import a big shard", work)
    try:
        qtbot.waitUntil(lambda: job.total == TOTAL, timeout=10_000)
        assert job.done == DONE
        assert job.rate > 0
    finally:
        release.set()
    qtbot.waitUntil(lambda: not job.active, timeout=10_000)
