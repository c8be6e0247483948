"""Runs core jobs in their lanes and turns their callbacks into throttled Qt signals.

A job is any ``fn(ctx: JobContext) -> result``. Jobs run on core.lanes (a write on its
repository's single writer lane, a read on the shared pool) and report through signals of a
QObject that lives on the UI thread, so Qt queues every emit to it; only ids and text cross
threads, results stay in ``JobRunner.results``. Progress is throttled to ten updates a second;
the result or the error arrives on the UI thread. Cancelling a queued job drops it before it
starts; cancelling a running one sets its cancel flag, and it stops at its next check (waiting
for the writer lock included). (Qt objects must also die on the UI thread: see gc_guard.)
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from modelmanager import logs
from modelmanager.core.jobs import JobContext
from modelmanager.core.lanes import LaneJob, Lanes, lane_key
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
    #: What the Details… button shows: the full message, or the traceback of a bug.
    details: str = ""
    waiting: str = ""  # what a running job waits for (another writer), "" when it works
    #: The writer lane it queues on (a repository's key), None for a read.
    lane: str | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def active(self) -> bool:
        """Queued or running: not yet seen to end, so it can still be cancelled."""
        return self.state in (QUEUED, RUNNING)

    @property
    def unit(self) -> str:
        """What ``done`` and ``total`` count: "" for bytes, else an item's noun ("chunk")."""
        return self.ctx.unit

    @property
    def rate(self) -> float:
        """Bytes (or items) per second so far; once it ended, its average."""
        return self.done / max((self.ended or time.monotonic()) - self.started, 1e-6)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, when it can be told."""
        if self.state != RUNNING or not self.total or not self.done:
            return None
        return max(0, self.total - self.done) / max(self.rate, 1e-9)


class _Signals(QObject):
    # Only numbers and strings cross threads: results stay in Python (JobRunner.results). Every
    # number travels as a Python int (``object``): a signal typed ``int`` is a 32-bit C++ int; a
    # 2 GiB shard overflowed it; job ids go the same way, so no 32-bit int crosses at all.
    progress = Signal(object, object, object, str)
    started = Signal(object)
    waiting = Signal(object, str)
    finished = Signal(object)
    failed = Signal(object, str, str, bool)  # id, one line, details, cancelled


def _run(
    job: JobRecord, fn: Callable[[JobContext], Any], signals: _Signals, results: dict[int, Any]
) -> None:
    """Run one job on a lane thread; keep its result in ``results``, signal how it ended."""
    signals.started.emit(job.id)
    try:
        results[job.id] = fn(job.ctx)
    except Cancelled:
        signals.failed.emit(job.id, "cancelled", "", True)
    except ModelManagerError as e:
        logs.failure(job.title, e)  # integrity errors with their traceback, others one line
        signals.failed.emit(job.id, str(e), str(e), False)
    except Exception as e:  # a bug: keep the app alive, show the traceback's last line
        logs.failure(job.title, e)  # the whole traceback goes to the log
        text = traceback.format_exc()
        signals.failed.emit(job.id, text.strip().splitlines()[-1], text, False)
    else:
        signals.finished.emit(job.id)


def _stopped_at_start(future: Future[None], job_id: int, signals: _Signals) -> None:
    """Signal the end of a job cancelled as it left its queue (``_run`` never ran)."""
    if future.cancelled() or isinstance(future.exception(), Cancelled):
        signals.failed.emit(job_id, "cancelled", "", True)


class JobRunner(QObject):
    """Submit, watch and cancel jobs; signals arrive on the thread that owns the runner."""

    # Job ids as Python ints (``object``), as in _Signals: no 32-bit int crosses a signal.
    changed = Signal(object)  # a job's state or progress changed
    succeeded = Signal(object)  # the result is in ``results`` until the next job ends
    failed = Signal(object, str)

    def __init__(self, workers: int | None = None) -> None:
        super().__init__()
        self.lanes = Lanes(workers)
        self.jobs: dict[int, JobRecord] = {}
        self.results: dict[int, Any] = {}
        self._live: dict[int, tuple[LaneJob[None], Callable[[Any], None] | None]] = {}
        self._ids = itertools.count(1)
        self._signals = _Signals()
        self._signals.progress.connect(self._on_progress)
        self._signals.started.connect(self._on_started)
        self._signals.waiting.connect(self._on_waiting)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)

    def submit(
        self, title: str, fn: Callable[[JobContext], Any],
        on_done: Callable[[Any], None] | None = None, *, writes: Path | None = None,
        unit: str = "",
    ) -> JobRecord:  # fmt: skip
        """Queue ``fn``: on the writer lane of the repository at ``writes`` if it writes one,
        else with the reads; ``on_done(result)`` runs on the UI thread if it succeeds. ``unit``
        names what its progress counts when not bytes ("chunk"; the job may also set
        ``ctx.unit`` itself)."""
        job_id = next(self._ids)
        last = [0.0]
        signals = self._signals

        def report(done: int, total: int, text: str) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or done >= total:
                last[0] = now
                signals.progress.emit(job_id, done, total, text)

        lane = lane_key(writes) if writes is not None else None
        job = JobRecord(job_id, title, JobContext(on_progress=report, unit=unit), lane=lane)
        self.jobs[job_id] = job
        lane_job = self.lanes.submit(
            lambda _ctx: _run(job, fn, signals, self.results), writes=writes, ctx=job.ctx,
            on_wait=lambda text: signals.waiting.emit(job_id, text),
        )  # fmt: skip
        lane_job.future.add_done_callback(lambda f: _stopped_at_start(f, job_id, signals))
        self._live[job_id] = (lane_job, on_done)
        self.changed.emit(job_id)
        return job

    def cancel(self, job_id: int) -> None:
        """Drop the job if it is still queued, else ask it to stop at its next check."""
        job = self.jobs.get(job_id)
        live = self._live.get(job_id)
        if job is None or live is None or not job.active:
            return
        live[0].cancel()  # a job dropped from its queue ends through _stopped_at_start

    def ahead(self, job: JobRecord) -> JobRecord | None:
        """The write this queued write waits behind on its lane (the oldest active one)."""
        if job.state != QUEUED or job.lane is None:
            return None
        for other in self.jobs.values():
            if other.id >= job.id:
                return None
            if other.lane == job.lane and other.active:
                return other
        return None

    def running(self) -> list[JobRecord]:
        """Jobs queued or running, not yet seen to end (their end signal may still be queued)."""
        return [j for j in self.jobs.values() if j.active]

    def working(self) -> list[JobRecord]:
        """Jobs whose code is still running (what closing the window would stop)."""
        return [self.jobs[i] for i, (lane, _done) in self._live.items() if not lane.future.done()]

    def forget_finished(self) -> list[int]:
        """Drop the records of jobs seen to end ("Clear finished"); their ids, in order."""
        gone = [i for i, j in self.jobs.items() if not j.active]
        for i in gone:
            del self.jobs[i]
        return gone

    def cancel_all_and_wait(self, timeout_ms: int = 30_000) -> bool:
        """Drop every queued job, ask the running ones to stop and wait; False if one runs on."""
        for job in self.running():
            self.cancel(job.id)
        futures = [lane.future for lane, _on_done in self._live.values()]
        _done, pending = wait(futures, timeout=timeout_ms / 1000)
        return not pending

    def _on_started(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state == QUEUED:
            job.state, job.started = RUNNING, time.monotonic()
            self.changed.emit(job_id)

    def _on_waiting(self, job_id: int, text: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.active:
            job.waiting = text
            self.changed.emit(job_id)

    def _on_progress(self, job_id: int, done: int, total: int, text: str) -> None:
        job = self.jobs.get(job_id)
        if job is None or not job.active:
            return  # a late report of a job already seen to end (or cleared)
        job.done, job.total, job.text = done, total, text
        self.changed.emit(job_id)

    def _end(self, job_id: int, state: str, error: str = "") -> Callable[[Any], None] | None:
        job = self.jobs[job_id]
        job.state, job.error, job.ended, job.waiting = state, error, time.monotonic(), ""
        _future, on_done = self._live.pop(job_id, (None, None))
        self.changed.emit(job_id)
        return on_done

    def _on_finished(self, job_id: int) -> None:
        on_done = self._end(job_id, DONE)
        result = self.results.pop(job_id, None)
        if on_done is not None:
            on_done(result)
        self.succeeded.emit(job_id)

    def _on_failed(self, job_id: int, message: str, details: str, cancelled: bool) -> None:
        job = self.jobs.get(job_id)
        if job is None or not job.active:
            return  # already seen to end
        job.details = details
        self._end(job_id, CANCELLED if cancelled else FAILED, "" if cancelled else message)
        if not cancelled:
            self.failed.emit(job_id, message)
