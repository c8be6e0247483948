"""Where jobs run: one single-worker writer lane per repository, one shared pool for reads.

A job is ``fn(ctx: JobContext) -> result`` and says whether it writes, naming the repository
root. Writes of one repository queue on that repository's own single-worker executor, so two
writes of this program never race for the writer lock, and a write still queued can be dropped
before it starts; reads run beside them on a shared pool. Writes of other processes (the
command line beside the window) still meet these through the repository's file lock.

While a job runs, :func:`current_job` names it: the writer lock's wait watches its cancel flag
and tells it that it waits, without every service having to pass them down.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Generic, TypeVar

from modelmanager.core.jobs import JobContext

T = TypeVar("T")

#: The lane job running on this thread (each pool thread has its own context).
_current: ContextVar[LaneJob[Any] | None] = ContextVar("modelmanager_lane_job", default=None)


def current_job() -> LaneJob[Any] | None:
    """The lane job this thread is running, or None outside a lane."""
    return _current.get()


def lane_key(root: Path | str) -> str:
    """The one name of a repository's lane, however its root was spelled."""
    return str(Path(root).resolve())


class LaneJob(Generic[T]):
    """A submitted job: its context, its lane (a repository root for writes) and its future."""

    def __init__(
        self, ctx: JobContext, writes: str | None, on_wait: Callable[[str], None] | None
    ) -> None:
        self.ctx = ctx
        self.writes = writes
        self.future: Future[T] = Future()
        self.waiting_for = ""  # what the job waits for (the writer lock), "" when it does not
        self._on_wait = on_wait

    def cancel(self) -> bool:
        """Drop the job if it has not started (True); else ask it to stop at its next check."""
        self.ctx.cancel()
        return self.future.cancel()

    def waiting(self, text: str) -> None:
        """Note that the job waits (``text`` says for what) or, with "", no longer does."""
        if text != self.waiting_for:
            self.waiting_for = text
            if self._on_wait is not None:
                self._on_wait(text)


def _call(job: LaneJob[T], fn: Callable[[JobContext], T]) -> T:
    """Run ``fn`` as ``job`` on a lane thread; a job cancelled while queued does not start."""
    token = _current.set(job)
    try:
        job.ctx.check()
        return fn(job.ctx)
    finally:
        _current.reset(token)


def default_readers() -> int:
    """Read threads: reads mostly wait on disks and SQLite, so more than the cores."""
    return max(4, 2 * (os.cpu_count() or 2))


class Lanes:
    """Submit jobs to the read pool or to a repository's writer lane; Qt-free."""

    def __init__(self, readers: int | None = None) -> None:
        self._reads = ThreadPoolExecutor(readers or default_readers(), thread_name_prefix="mm-read")
        self._writers: dict[str, ThreadPoolExecutor] = {}
        self._guard = threading.Lock()

    def _lane(self, key: str) -> ThreadPoolExecutor:
        with self._guard:
            lane = self._writers.get(key)
            if lane is None:
                lane = ThreadPoolExecutor(1, thread_name_prefix=f"mm-write-{len(self._writers)}")
                self._writers[key] = lane
            return lane

    def submit(
        self,
        fn: Callable[[JobContext], T],
        *,
        writes: Path | str | None = None,
        ctx: JobContext | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> LaneJob[T]:
        """Queue ``fn``: on the writer lane of repository ``writes``, or with the reads.

        ``on_wait(text)`` hears, from the job's thread, when the job starts or stops waiting
        for the writer lock ("" when it stops)."""
        key = lane_key(writes) if writes is not None else None
        job: LaneJob[T] = LaneJob(ctx or JobContext(), key, on_wait)
        pool = self._lane(key) if key is not None else self._reads
        job.future = pool.submit(_call, job, fn)
        return job

    def shutdown(self, *, wait: bool = True) -> None:
        """Drop every queued job and stop the threads (after the running jobs end if ``wait``)."""
        with self._guard:
            pools = [self._reads, *self._writers.values()]
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=True)
