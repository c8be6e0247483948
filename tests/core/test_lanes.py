"""Lanes: one writer at a time per repository, reads beside it, queued writes droppable."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelmanager.core.jobs import JobContext
from modelmanager.core.lanes import Lanes, current_job, lane_key
from modelmanager.errors import Cancelled


@pytest.fixture
def lanes() -> Iterator[Lanes]:
    runner = Lanes(readers=4)
    yield runner
    runner.shutdown()


def _blocker(started: threading.Event, go: threading.Event) -> Callable[[JobContext], str]:
    def run(_ctx: JobContext) -> str:
        started.set()
        assert go.wait(30)
        return "blocker"

    return run


def test_writes_of_one_repository_run_one_at_a_time_in_order(lanes: Lanes, tmp_path: Path) -> None:
    started, go = threading.Event(), threading.Event()
    ran: list[str] = []
    first = lanes.submit(_blocker(started, go), writes=tmp_path)
    assert started.wait(30)
    later = [lanes.submit(lambda _ctx, i=i: ran.append(f"w{i}"), writes=tmp_path) for i in range(3)]
    assert not any(j.future.running() or j.future.done() for j in later)  # queued behind first
    go.set()
    assert first.future.result(30) == "blocker"
    for job in later:
        job.future.result(30)
    assert ran == ["w0", "w1", "w2"]


def test_reads_and_other_repositories_run_beside_a_blocked_write(
    lanes: Lanes, tmp_path: Path
) -> None:
    started, go = threading.Event(), threading.Event()
    blocked = lanes.submit(_blocker(started, go), writes=tmp_path / "a")
    assert started.wait(30)
    assert lanes.submit(lambda _ctx: "read").future.result(30) == "read"
    assert lanes.submit(lambda _ctx: "b", writes=tmp_path / "b").future.result(30) == "b"
    assert not blocked.future.done()
    go.set()
    blocked.future.result(30)


def test_a_queued_write_cancelled_before_it_starts_never_runs(lanes: Lanes, tmp_path: Path) -> None:
    started, go = threading.Event(), threading.Event()
    ran: list[str] = []
    lanes.submit(_blocker(started, go), writes=tmp_path)
    assert started.wait(30)
    dropped = lanes.submit(lambda _ctx: ran.append("dropped"), writes=tmp_path)
    kept = lanes.submit(lambda _ctx: ran.append("kept"), writes=tmp_path)
    assert dropped.cancel()  # dropped from the queue
    assert dropped.future.cancelled()
    assert dropped.ctx.cancelled
    go.set()
    kept.future.result(30)
    assert ran == ["kept"]


def test_cancelling_a_running_job_sets_its_flag(lanes: Lanes, tmp_path: Path) -> None:
    started = threading.Event()

    def run(ctx: JobContext) -> None:
        started.set()
        assert ctx.cancel_event.wait(30)
        ctx.check()

    job = lanes.submit(run, writes=tmp_path)
    assert started.wait(30)
    assert not job.cancel()  # already running: not dropped, asked to stop
    assert isinstance(job.future.exception(30), Cancelled)


def test_a_job_knows_itself_and_a_lane_has_one_name_per_folder(
    lanes: Lanes, tmp_path: Path
) -> None:
    job = lanes.submit(lambda _ctx: current_job(), writes=tmp_path)
    assert job.future.result(30) is job
    assert current_job() is None
    (tmp_path / "repo").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "repo")
    assert lane_key(tmp_path / "link") == lane_key(tmp_path / "x" / ".." / "repo")
    assert job.writes == lane_key(tmp_path)


def test_waiting_is_told_once_per_change(lanes: Lanes, tmp_path: Path) -> None:
    heard: list[str] = []

    def run(_ctx: JobContext) -> None:
        job = current_job()
        assert job is not None
        for text in ("waiting for X", "waiting for X", "", ""):
            job.waiting(text)

    lanes.submit(run, writes=tmp_path, on_wait=heard.append).future.result(30)
    assert heard == ["waiting for X", ""]
