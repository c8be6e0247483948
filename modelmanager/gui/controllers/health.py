"""The Maintenance menu: Verify (quick / full), Scrub, Repair, Rebalance, Free unused space.

Each runs the service the CLI command runs, as a job on the window's runner (progress and
Cancel in the Jobs tab), and ends in a results dialog with the report per device and per
model; a scrub or verify that finds damage offers "Repair now". Rebalance is previewed (its
move plan) and asked first; freeing space goes through :class:`Cleanup`'s preview.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from modelmanager.core.jobs import JobContext
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT, JobRecord
from modelmanager.gui.report_dialog import ReportDialog
from modelmanager.gui.reports import (
    Report,
    move_plan_text,
    rebalance_report,
    repair_report,
    scrub_report,
    verify_report,
)
from modelmanager.services.maintenance import VerifyReport, verify
from modelmanager.services.redundancy import (
    MovePlan,
    Rebalanced,
    RepairReport,
    ScrubReport,
    preview_moves,
    rebalance,
    repair,
    scrub,
)


class Health:
    """Runs the repository checks and fixes, and shows what each found."""

    def __init__(self, context: WindowContext, parent: QWidget) -> None:
        self.context = context
        self.parent = parent
        self.dialog: ReportDialog | None = None  # the last results dialog (tests read it)
        self.box: QMessageBox | None = None  # the last question

    def show_report(self, report: Report) -> ReportDialog:
        """The results dialog for ``report`` ("Repair now" when a repair can help)."""
        actions: dict[str, Callable[[], object]] = {}
        if report.repairable:
            actions["Repair now"] = self.repair
        dialog = ReportDialog(report, self.parent, actions)
        self.dialog = dialog
        dialog.show()
        self.context.notify(report.summary)
        return dialog

    def verify(self, quick: bool = False) -> JobRecord:
        """Maintenance > Verify: quick (presence and sizes) or full (every byte re-hashed)."""
        ws = self.context.ws

        def done(r: VerifyReport) -> None:
            self.show_report(verify_report(r, quick))

        title = "Verify the repository (quick)" if quick else "Verify the repository"
        return self.context.runner.submit(title, lambda ctx: verify(ws, quick=quick, ctx=ctx),
                                          done)  # fmt: skip

    def scrub(self) -> JobRecord:
        """Maintenance > Scrub: every piece on every device, every metadata copy."""
        ws = self.context.ws

        def done(r: ScrubReport) -> None:
            self.show_report(scrub_report(r))

        return self.context.runner.submit("Scrub", lambda ctx: scrub(ws, ctx=ctx), done)

    def repair(self) -> JobRecord:
        """Maintenance > Repair (or "Repair now"): rebuild from good pieces only."""
        ws = self.context.ws

        def run(ctx: JobContext) -> RepairReport:
            return repair(ws, ctx=ctx, lock_timeout=GUI_LOCK_WAIT)

        def done(r: RepairReport) -> None:
            self.show_report(repair_report(r))
            self.context.apply_changes(ws, r.changes)

        return self.context.runner.submit("Repair", run, done, writes=ws.repo.root)

    def ask_rebalance(self) -> JobRecord:
        """Maintenance > Rebalance…: the move plan first (a job), then the question."""
        ws = self.context.ws

        def ask(plan: MovePlan) -> None:
            text, details = move_plan_text(plan)
            buttons = QMessageBox.StandardButton.Cancel if plan.moves else \
                QMessageBox.StandardButton.Close  # fmt: skip
            box = QMessageBox(QMessageBox.Icon.Question, "Rebalance", text, buttons, self.parent)
            if details:
                box.setDetailedText(details)
            if plan.moves:
                go = box.addButton("Move", QMessageBox.ButtonRole.AcceptRole)
                go.clicked.connect(self.rebalance)
            self.box = box
            box.open()

        return self.context.runner.submit("Read what rebalance would move",
                                          lambda _ctx: preview_moves(ws), ask)  # fmt: skip

    def rebalance(self) -> JobRecord:
        """Move pieces to where placement now puts them."""
        ws = self.context.ws

        def run(ctx: JobContext) -> Rebalanced:
            return rebalance(ws, ctx=ctx, lock_timeout=GUI_LOCK_WAIT)

        def done(r: Rebalanced) -> None:
            self.show_report(rebalance_report(r))
            self.context.apply_changes(ws, r.changes)

        return self.context.runner.submit("Rebalance", run, done, writes=ws.repo.root)
