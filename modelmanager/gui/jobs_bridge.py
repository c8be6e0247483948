"""Runs core jobs on a QThreadPool and turns their callbacks into throttled Qt signals.

A job is any ``fn(ctx: JobContext) -> result``. The runner keeps every job (and its runnable)
alive until it ends, emits progress at most ten times a second, and delivers the result or the
error on the UI thread. Cancelling sets the job's cancel flag; the job stops at its next check.
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from modelmanager.core.jobs import JobContext
from modelmanager.errors import Cancelled, ModelManagerError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


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
    progress = Signal(int, int, int, str)
    finished = Signal(int, object)
    failed = Signal(int, str, bool)


class _Runnable(QRunnable):
    def __init__(self, job: JobRecord, fn: Callable[[JobContext], Any], signals: _Signals) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.job, self.fn, self.signals = job, fn, signals

    def run(self) -> None:
        try:
            result = self.fn(self.job.ctx)
        except Cancelled:
            self.signals.failed.emit(self.job.id, "cancelled", True)
        except ModelManagerError as e:
            self.signals.failed.emit(self.job.id, str(e), False)
        except Exception:  # a bug: keep the app alive, show the traceback's last line
            text = traceback.format_exc()
            self.signals.failed.emit(self.job.id, text.strip().splitlines()[-1], False)
        else:
            self.signals.finished.emit(self.job.id, result)


class JobRunner(QObject):
    """Submit, watch and cancel jobs; signals arrive on the thread that owns the runner."""

    changed = Signal(int)  # a job's state or progress changed
    succeeded = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, pool: QThreadPool | None = None) -> None:
        super().__init__()
        self.pool = pool or QThreadPool.globalInstance()
        self.jobs: dict[int, JobRecord] = {}
        self._live: dict[int, tuple[_Runnable, Callable[[Any], None] | None]] = {}
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
        runnable = _Runnable(job, fn, signals)
        self.jobs[job_id] = job
        self._live[job_id] = (runnable, on_done)
        self.pool.start(runnable)
        self.changed.emit(job_id)
        return job

    def cancel(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state == RUNNING:
            job.ctx.cancel()

    def running(self) -> list[JobRecord]:
        return [j for j in self.jobs.values() if j.state == RUNNING]

    def cancel_all_and_wait(self, timeout_ms: int = 30_000) -> bool:
        """Ask every job to stop and wait for the pool; False if something still runs."""
        for job in self.running():
            job.ctx.cancel()
        return bool(self.pool.waitForDone(timeout_ms))

    def _on_progress(self, job_id: int, done: int, total: int, text: str) -> None:
        job = self.jobs[job_id]
        job.done, job.total, job.text = done, total, text
        self.changed.emit(job_id)

    def _end(self, job_id: int, state: str, error: str = "") -> Callable[[Any], None] | None:
        job = self.jobs[job_id]
        job.state, job.error, job.ended = state, error, time.monotonic()
        _runnable, on_done = self._live.pop(job_id, (None, None))
        self.changed.emit(job_id)
        return on_done

    def _on_finished(self, job_id: int, result: object) -> None:
        on_done = self._end(job_id, DONE)
        if on_done is not None:
            on_done(result)
        self.succeeded.emit(job_id, result)

    def _on_failed(self, job_id: int, message: str, cancelled: bool) -> None:
        self._end(job_id, CANCELLED if cancelled else FAILED, "" if cancelled else message)
        if not cancelled:
            self.failed.emit(job_id, message)
