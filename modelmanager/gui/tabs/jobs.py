"""The Jobs tab: every user job with its progress, rate, state and a Cancel button.

Rates and times left only where they mean something: bytes/s for byte jobs, items/s and the
items left for item jobs (``ctx.unit``), nothing for a job that reports no total; a finished
job shows 100 % and its average rate. A write queued behind another on its repository's lane,
or waiting for another process's writer lock, says what it waits for and can be cancelled.
A failed job's row says "failed" in red with its whole message, and its button becomes
Details…; "Clear finished" drops the rows of jobs that ended.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QBrush, QColor, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, human_count, plural
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import DONE, FAILED, JobRecord, JobRunner
from modelmanager.gui.notices import FAILED_COLOR, details_box


def is_user_job(title: str) -> bool:
    """Background reads ("Read ...") are not user jobs: no row, no question at quit."""
    return not title.startswith("Read ")


def _seconds(s: float) -> str:
    """A time left as people read it: "40 s", "3 min 5 s", "2 h 10 min"."""
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _per_second(job: JobRecord) -> str:
    """The job's rate in its own unit: "12.5 MiB/s" or "3.2 chunks/s"."""
    if not job.unit:
        return f"{human_bytes(job.rate)}/s"
    rate = job.rate
    number = (
        f"{rate:.1f}" if rate < 10 else f"{rate:.0f}" if rate < 1000 else human_count(round(rate))
    )
    return f"{number} {job.unit}s/s"


def rate_text(job: JobRecord) -> str:
    """Rate and time left where they mean something: not for a job that reports no total (an
    "Add device" job), not before anything was counted; a finished job shows its average."""
    if not job.total or not job.done:
        return ""
    if job.state == DONE:
        return f"average {_per_second(job)}"
    if job.eta is None:
        return ""
    left = job.total - job.done
    items = f"{left:,} {job.unit}{'' if left == 1 else 's'} left, " if job.unit else ""
    return f"{_per_second(job)}, {items}{_seconds(job.eta)} left"


def progress_text(job: JobRecord, runner: JobRunner) -> str:
    """What the bar says: what a write waits for, else its percentage (with items counted)."""
    if job.waiting:
        return "waiting for another writer…"
    ahead = runner.ahead(job)
    if ahead is not None:
        # Qt's bar format has no escape: a word joiner keeps a title's "%p" from becoming 30%.
        return shown(f"waiting for {ahead.title}…").replace("%", "%\u2060")
    if job.unit and job.total:
        return f"%p% ({job.done:,} of {job.total:,} {job.unit}{'' if job.total == 1 else 's'})"
    return "%p%"


class JobsTab(QTableWidget):
    """One row per user job, updated from the runner's signals."""

    def __init__(self, context: WindowContext) -> None:
        super().__init__(0, 5)
        self.context = context
        self.rows: dict[int, int] = {}  # job id -> its row
        self.box: object | None = None  # the last Details… box (tests read it)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip("Remove the rows of jobs that ended (done, failed or "
                                     "cancelled)")  # fmt: skip
        self.clear_button.clicked.connect(self.clear_finished)
        self.setHorizontalHeaderLabels(["Job", "Progress", "Rate / ETA", "State", ""])
        header = self.horizontalHeader()
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)  # a failure's message
        # Wide enough for "40% (5,200 of 12,800 chunks)" and "2.5 GiB/s, 1 min 40 s left".
        for column, width in ((0, 170), (1, 210), (2, 180)):
            header.resizeSection(column, width)
        # A failed row is as tall as its wrapped message at the State column's current width
        # (refitted once the layout settles after a resize: see resizeEvent).
        header.sectionResized.connect(self._section_resized)
        self.setWordWrap(True)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        context.runner.changed.connect(self.job_changed)
        context.runner.failed.connect(self.job_failed)

    def job_changed(self, job_id: int) -> None:
        """Add or update the job's row (and those of the writes queued behind it, whose "waiting
        for" changes when it ends); the status line counts the running ones."""
        runner = self.context.runner
        job = runner.jobs.get(job_id)
        if job is None or not is_user_job(job.title):
            return  # a background read leaves the status line alone
        self._show(job)
        if job.lane is not None:
            for other in runner.running():
                if other.lane == job.lane and other.id > job.id:
                    self._show(other)
        running = len([j for j in runner.running() if is_user_job(j.title)])
        self.context.notify(f"{plural(running, 'job')} running" if running else "", 0)

    def _show(self, job: JobRecord) -> None:
        """Add or update one user job's row."""
        if not is_user_job(job.title):
            return
        runner, job_id = self.context.runner, job.id
        row = self.rows.get(job_id)
        if row is None:
            row = self.rows[job_id] = self.rowCount()
            self.insertRow(row)
            self.setItem(row, 0, QTableWidgetItem(shown(job.title)))
            self.setCellWidget(row, 1, QProgressBar())
            cancel = QPushButton("Cancel")
            cancel.clicked.connect(lambda: runner.cancel(job_id))
            self.setCellWidget(row, 4, cancel)
        progress = self.cellWidget(row, 1)
        assert isinstance(progress, QProgressBar)
        progress.setRange(0, 1000)
        finished = job.state == DONE
        value = min(1000, 1000 * job.done // job.total) if job.total else 0
        progress.setValue(1000 if finished else value)
        text = progress_text(job, runner)
        progress.setFormat(text)
        ahead = runner.ahead(job)
        progress.setToolTip(shown(job.waiting or (text if ahead is not None else "")))
        self.setItem(row, 2, QTableWidgetItem(rate_text(job)))
        failed = job.state == FAILED
        state = QTableWidgetItem(shown(f"failed: {job.error}" if failed else job.state))
        state.setToolTip(shown(job.error))
        if failed:
            state.setForeground(QBrush(QColor(FAILED_COLOR)))
            self._details_button(row, job)
        self.setItem(row, 3, state)
        if failed:
            self.resizeRowToContents(row)  # the whole message, wrapped
        button = self.cellWidget(row, 4)
        if button is not None and not failed:
            button.setEnabled(job.active)

    def _section_resized(self, column: int, _old: int, _new: int) -> None:
        if column == 3:
            self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        QTimer.singleShot(0, self._fit)  # after the stretched State column took its width

    def _fit(self) -> None:
        """Fit the failed rows' heights to their messages (the State column was resized)."""
        for job_id, row in self.rows.items():
            job = self.context.runner.jobs.get(job_id)
            if job is not None and job.state == FAILED:
                self.resizeRowToContents(row)

    def _details_button(self, row: int, job: JobRecord) -> None:
        """A failed job's Cancel becomes Details…: its whole message and traceback."""
        button = QPushButton("Details…")
        button.clicked.connect(lambda: self.show_details(job.id))
        self.setCellWidget(row, 4, button)

    def show_details(self, job_id: int) -> None:
        """The Details… box of a failed job."""
        job = self.context.runner.jobs.get(job_id)
        if job is not None:
            self.box = details_box(self.window(), job)

    def job_failed(self, job_id: int, message: str) -> None:
        """A failed job says so on the status line (the banner keeps user jobs' failures)."""
        job = self.context.runner.jobs[job_id]
        if job.state == FAILED:
            self.context.notify(shown(f"{job.title} failed: {message}"))

    def clear_finished(self) -> None:
        """Drop the rows (and records) of every job that ended; running ones stay."""
        gone = set(self.context.runner.forget_finished())
        keep = sorted((row, job_id) for job_id, row in self.rows.items() if job_id not in gone)
        for row in sorted((r for j, r in self.rows.items() if j in gone), reverse=True):
            self.removeRow(row)
        self.rows = {job_id: n for n, (_row, job_id) in enumerate(keep)}


def jobs_page(table: JobsTab) -> QWidget:
    """The Jobs tab's page: the table under a "Clear finished" button."""
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    bar = QHBoxLayout()
    bar.addStretch(1)
    bar.addWidget(table.clear_button)
    layout.addLayout(bar)
    layout.addWidget(table)
    return page
