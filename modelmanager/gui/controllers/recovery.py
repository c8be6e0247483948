"""File > Recover repository…: rebuild a lost main folder from its devices, as a job, then open it.

The dialog names the folders; the job runs ``services.recovery.recover_repository`` on the new
folder's writer lane (its repair reports progress and stops at Cancel). On success the dialog
closes, the recovered repository is listed and shown, and a box says what came back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox, QWidget

from modelmanager.core.jobs import JobContext
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.context import WindowContext
from modelmanager.gui.controllers.repositories import Repositories
from modelmanager.gui.jobs_bridge import CANCELLED, JobRecord
from modelmanager.gui.recover_dialog import RecoverDialog
from modelmanager.services import Workspace
from modelmanager.services.recovery import RecoverResult, recover_repository

if TYPE_CHECKING:
    from modelmanager.services.redundancy import RepairReport


def _repair_lines(rep: RepairReport | None, root: Path) -> tuple[list[str], list[str]]:
    """What repair did (or that it did not run), and its details."""
    if rep is None:
        return [f"Not repaired: run 'modelmanager --repo {root} repair' to rebuild the pieces "
                "main and the offline devices held."], []  # fmt: skip
    text = (f"Repair: {plural(rep.repaired_chunks, 'chunk')} rebuilt "
            f"({human_bytes(rep.written_bytes)} written), "
            f"{plural(len(rep.lost), 'chunk')} lost.")  # fmt: skip
    details = [f"lost chunk {x.chunk} (needed by {', '.join(x.versions)})" for x in rep.lost]
    details += [f"not repaired: chunk {x.chunk}: {x.reason}" for x in rep.failed]
    details += [f"device {name}: {problem}" for name, problem in rep.device_problems.items()]
    lines = [text]
    if rep.failed:
        lines.append(f"{plural(len(rep.failed), 'chunk')} could not be brought back to policy.")
    if rep.held_back:
        lines.append(rep.held_back)
    return lines, details


def recovery_text(result: RecoverResult) -> tuple[str, str]:
    """The summary of a recovery for its result box, and the full details."""
    r = result.recovered
    counts = ", ".join([plural(result.models, "model"), plural(result.versions, "version"),
                        plural(result.labels, "label")])  # fmt: skip
    lines = [f"Recovered {r.root} from {plural(len(r.found), 'device')} "
             f"({', '.join(r.found)}): {counts}."]  # fmt: skip
    if r.offline:
        lines.append(f"Not given, so set offline: {', '.join(r.offline)}. Repair rebuilds "
                     "their pieces elsewhere; remove them (device rm) once they are gone for "
                     "good.")  # fmt: skip
    if r.damaged:
        lines.append(f"{plural(len(r.damaged), 'record')} had no intact copy on any device "
                     "given (see details).")  # fmt: skip
    repair_lines, details = _repair_lines(result.repair, r.root)
    lines += repair_lines
    details = [f"no intact copy on any device given: {key}" for key in r.damaged] + details
    # Each line escaped on its own: shown() would escape the line breaks between them too.
    return "\n\n".join(map(shown, lines)), "\n".join(map(shown, details))


class Recovery:
    """Opens the Recover dialog, runs the recovery as a job, shows and opens the result."""

    def __init__(
        self,
        context: WindowContext,
        parent: QWidget,
        repositories: Repositories,
        activate: Callable[[str], None],
    ) -> None:
        self.context = context
        self.parent = parent  # the dialog's and the result box's window
        self.repositories = repositories
        self.activate = activate  # shows a listed repository in the tabs
        self.dialog: RecoverDialog | None = None
        self.job: JobRecord | None = None
        self.dest: Path | None = None  # where the running (or last) recovery writes
        self.box: QMessageBox | None = None  # the last result box (tests read it)

    def open_dialog(self) -> RecoverDialog:
        """File > Recover repository…: the dialog, not modal to the rest of the window."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return self.dialog
        dialog = RecoverDialog(self.parent)
        dialog.start.connect(self.start)
        dialog.stop.connect(self.cancel)
        self.dialog = dialog
        dialog.open()
        return dialog

    def start(self, dest: Path, sources: list[Path], run_repair: bool) -> JobRecord:
        """Recover into ``dest`` from ``sources`` (then repair, if asked) as a job."""
        runner = self.context.runner

        def run(ctx: JobContext) -> tuple[Workspace, RecoverResult]:
            return recover_repository(dest, sources, run_repair=run_repair, ctx=ctx)

        job = runner.submit(f"Recover repository {dest}", run, self._done, writes=dest)
        self.job, self.dest = job, dest
        if self.dialog is not None:
            self.dialog.set_running(True)
        runner.changed.connect(self._changed)
        return job

    def cancel(self) -> None:
        """Stop the running recovery (at its next check: during repair)."""
        if self.job is not None:
            self.context.runner.cancel(self.job.id)

    def _changed(self, job_id: int) -> None:
        job = self.job
        if job is None or job_id != job.id:
            return
        if job.active:
            if self.dialog is not None:
                self.dialog.show_progress(job.done, job.total, job.text)
            return
        self.context.runner.changed.disconnect(self._changed)
        self.job = None
        if job.state == CANCELLED:
            self._stopped()
        elif job.error and self.dialog is not None:
            self.dialog.failed(job.error)  # the job's one line (the Jobs tab has it too)

    def _stopped(self) -> None:
        """Cancelled: if the metadata was already written (repair was running), open it."""
        dest = self.dest
        if dest is None:
            return
        if self.dialog is not None:
            self.dialog.failed(f"Stopped. If {dest} already holds the recovered metadata it is "
                               "opened now; run repair on it to finish.")  # fmt: skip
        self.repositories.open(dest, quiet=True)

    def _done(self, result: tuple[Workspace, RecoverResult]) -> None:
        ws, outcome = result
        if self.dialog is not None:
            self.dialog.set_running(False)
            self.dialog.accept()
        self.repositories.adopt(ws)
        self.activate(str(ws.repo.root))
        text, details = recovery_text(outcome)
        icon = QMessageBox.Icon.Information if outcome.ok else QMessageBox.Icon.Warning
        box = QMessageBox(icon, "Repository recovered", text, QMessageBox.StandardButton.Ok,
                          self.parent)  # fmt: skip
        if details:
            box.setDetailedText(details)
        self.box = box
        box.open()
        self.context.notify(text.split("\n")[0])
