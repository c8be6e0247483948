"""Runs core jobs on a thread pool and turns their callbacks into throttled Qt signals.

A job is any ``fn(ctx: JobContext) -> result``. Jobs run on a Python ThreadPoolExecutor and
report through signals of a QObject that lives on the UI thread, so Qt queues every emit to it;
only ids and text cross threads, results stay in ``JobRunner.results``. Progress is throttled
to ten updates a second; the result or the error arrives on the UI thread. Cancelling sets the
job's cancel flag; the job stops at its next check. (Qt objects must also die on the UI thread:
see gc_guard.)
"""

from __future__ import annotations

import itertools
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from modelmanager.core.jobs import JobContext
from modelmanager.errors import Cancelled, ModelManagerError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"

#: Writes started from the GUI wait this long for another writer instead of failing.
GUI_LOCK_WAIT = 3600.0


@dataclass
class JobRecord:
    """What the Jobs tab shows about one job."""

    id: int
    title: str
    ctx: JobContext
    state: str = QUEUED
    done: int = 0
    total: int = 0
    text: str = ""
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def rate(self) -> float:
        """Bytes (or items) per second so far."""
        return self.done / max((self.ended or time.monotonic()) - self.started, 1e-6)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, when it can be told."""
        if self.state != RUNNING or not self.total or not self.done:
            return None
        return (self.total - self.done) / max(self.rate, 1e-9)


class _Signals(QObject):
    # Only ints and strings cross threads: results stay in Python (JobRunner.results), so no
    # Python object ever travels inside a queued Qt event.
    progress = Signal(int, int, int, str)
    finished = Signal(int)
    failed = Signal(int, str, bool)


def _run(
    job: JobRecord, fn: Callable[[JobContext], Any], signals: _Signals, results: dict[int, Any]
) -> None:
    """Run one job on a pool thread; keep its result in ``results``, signal how it ended."""
    try:
        results[job.id] = fn(job.ctx)
    except Cancelled:
        signals.failed.emit(job.id, "cancelled", True)
    except ModelManagerError as e:
        signals.failed.emit(job.id, str(e), False)
    except Exception:  # a bug: keep the app alive, show the traceback's last line
        text = traceback.format_exc()
        signals.failed.emit(job.id, text.strip().splitlines()[-1], False)
    else:
        signals.finished.emit(job.id)


class JobRunner(QObject):
    """Submit, watch and cancel jobs; signals arrive on the thread that owns the runner."""

    changed = Signal(int)  # a job's state or progress changed
    succeeded = Signal(int)  # the result is in ``results`` until the next job ends
    failed = Signal(int, str)

    def __init__(self, workers: int | None = None) -> None:
        super().__init__()
        self.pool = ThreadPoolExecutor(workers or max(4, 2 * (os.cpu_count() or 2)),
                                       thread_name_prefix="mm-job")  # fmt: skip
        self.jobs: dict[int, JobRecord] = {}
        self.results: dict[int, Any] = {}
        self._live: dict[int, tuple[Future[None], Callable[[Any], None] | None]] = {}
        self._ids = itertools.count(1)
        self._signals = _Signals()
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)

    def submit(
        self, title: str, fn: Callable[[JobContext], Any],
        on_done: Callable[[Any], None] | None = None,
    ) -> JobRecord:  # fmt: skip
        """Start ``fn`` on the pool; ``on_done(result)`` runs on the UI thread if it succeeds."""
        job_id = next(self._ids)
        last = [0.0]
        signals = self._signals

        def report(done: int, total: int, text: str) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or done >= total:
                last[0] = now
                signals.progress.emit(job_id, done, total, text)

        job = JobRecord(job_id, title, JobContext(on_progress=report))
        job.state = RUNNING
        self.jobs[job_id] = job
        self._live[job_id] = (self.pool.submit(_run, job, fn, signals, self.results), on_done)
        self.changed.emit(job_id)
        return job

    def cancel(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state == RUNNING:
            job.ctx.cancel()

    def running(self) -> list[JobRecord]:
        """Jobs not yet seen to end (their end signal may still be queued)."""
        return [j for j in self.jobs.values() if j.state == RUNNING]

    def working(self) -> list[JobRecord]:
        """Jobs whose code is still running on the pool (what closing the window would stop)."""
        return [self.jobs[i] for i, (future, _done) in self._live.items() if not future.done()]

    def cancel_all_and_wait(self, timeout_ms: int = 30_000) -> bool:
        """Ask every job to stop and wait for them; False if something still runs."""
        for job in self.running():
            job.ctx.cancel()
        futures = [future for future, _on_done in self._live.values()]
        _done, pending = wait(futures, timeout=timeout_ms / 1000)
        return not pending

    def _on_progress(self, job_id: int, done: int, total: int, text: str) -> None:
        job = self.jobs[job_id]
        job.done, job.total, job.text = done, total, text
        self.changed.emit(job_id)

    def _end(self, job_id: int, state: str, error: str = "") -> Callable[[Any], None] | None:
        job = self.jobs[job_id]
        job.state, job.error, job.ended = state, error, time.monotonic()
        _future, on_done = self._live.pop(job_id, (None, None))
        self.changed.emit(job_id)
        return on_done

    def _on_finished(self, job_id: int) -> None:
        on_done = self._end(job_id, DONE)
        result = self.results.pop(job_id, None)
        if on_done is not None:
            on_done(result)
        self.succeeded.emit(job_id)

    def _on_failed(self, job_id: int, message: str, cancelled: bool) -> None:
        self._end(job_id, CANCELLED if cancelled else FAILED, "" if cancelled else message)
        if not cancelled:
            self.failed.emit(job_id, message)
