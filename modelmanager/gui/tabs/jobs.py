"""The Jobs tab: every user job with its progress, rate, state and a Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QHeaderView, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem

from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import FAILED


def is_user_job(title: str) -> bool:
    """Background reads ("Read ...") are not user jobs: no row, no question at quit."""
    return not title.startswith("Read ")


class JobsTab(QTableWidget):
    """One row per user job, updated from the runner's signals."""

    def __init__(self, context: WindowContext) -> None:
        super().__init__(0, 5)
        self.context = context
        self.rows: dict[int, int] = {}  # job id -> its row
        self.setHorizontalHeaderLabels(["Job", "Progress", "Rate / ETA", "State", ""])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        context.runner.changed.connect(self.job_changed)
        context.runner.failed.connect(self.job_failed)

    def job_changed(self, job_id: int) -> None:
        """Add or update the job's row; the status line counts the running ones."""
        runner = self.context.runner
        job = runner.jobs[job_id]
        if not is_user_job(job.title):
            return
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
        progress.setValue(int(1000 * job.done / job.total) if job.total else 0)
        progress.setFormat("waiting for another writer…" if job.waiting else "%p%")
        progress.setToolTip(shown(job.waiting))
        eta = f", {job.eta:.0f} s left" if job.eta is not None else ""
        self.setItem(row, 2, QTableWidgetItem(f"{human_bytes(job.rate)}/s{eta}"))
        state = QTableWidgetItem(shown(job.error or job.state))
        state.setToolTip(shown(job.error))
        self.setItem(row, 3, state)
        button = self.cellWidget(row, 4)
        if button is not None:
            button.setEnabled(job.active)
        running = len([j for j in runner.running() if is_user_job(j.title)])
        self.context.notify(f"{plural(running, 'job')} running" if running else "", 0)

    def job_failed(self, job_id: int, message: str) -> None:
        """A failed job says so on the status line."""
        job = self.context.runner.jobs[job_id]
        if job.state == FAILED:
            self.context.notify(shown(f"{job.title} failed: {message}"))
