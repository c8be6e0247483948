"""Freeing space from the window: remove versions, collect garbage; each previewed, then asked.

The preview is read as a job (it reads every manifest), shown with the exact bytes it frees, and
only the button in that box starts the change, as another job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox, QWidget

from modelmanager.core.jobs import JobContext
from modelmanager.core.units import human_bytes, plural
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT
from modelmanager.gui.reports import Report, gc_report
from modelmanager.services import history
from modelmanager.services.maintenance import GcPlan, GcResult, collect_garbage, plan_gc

if TYPE_CHECKING:
    from modelmanager.gui.jobs_bridge import JobRecord


def _size(n: int) -> str:
    """A size that never wraps between number and unit in a message box."""
    return human_bytes(n).replace(" ", "\u00a0")


def removal_text(plan: history.RemovalPlan) -> tuple[str, str]:
    """The question and the full list of what goes, for a removal's confirmation."""
    what = ", ".join(plan.refs) if len(plan.refs) <= 3 else plural(len(plan.refs), "version")
    lines = [f"Remove {what}? This frees {_size(plan.freed_bytes)} on the devices."]
    if plan.labels:
        lines.append(f"The labels {', '.join(plan.labels)} go with "
                     f"{'them' if len(plan.refs) > 1 else 'it'}.")  # fmt: skip
    if plan.emptied:
        lines.append(f"No version of {', '.join(plan.emptied)} is left.")
    lines.append("This cannot be undone.")
    details = [
        *(f"remove {ref}" for ref in plan.refs),
        *(f"remove label {label}" for label in plan.labels),
        *(f"{ref} keeps its number; its parent shows as removed" for ref in plan.children),
        f"delete {plural(len(plan.freed), 'chunk')} no other version uses "
        f"({human_bytes(plan.freed_bytes)} with every copy)",
        f"keep {plural(plan.shared_chunks, 'chunk')} other versions share",
    ]
    return "\n\n".join(lines), "\n".join(details)


class Cleanup:
    """The window's "Remove version…" and "Free unused space…" actions, each previewed first."""

    def __init__(
        self, context: WindowContext, parent: QWidget, clear_details: Callable[[], None],
        show_report: Callable[[Report], object] | None = None,
    ) -> None:  # fmt: skip
        self.context = context
        self.parent = parent  # the question boxes' window
        self.clear_details = clear_details  # shows no version, when the shown one is removed
        self.show_report = show_report  # the results dialog, after a garbage collection
        self.box: QMessageBox | None = None

    def _confirm(self, title: str, text: str, details: str, button: str,
                 start: Callable[[], object]) -> QMessageBox:  # fmt: skip
        box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                          QMessageBox.StandardButton.Cancel, self.parent)  # fmt: skip
        box.setDetailedText(details)
        go = box.addButton(button, QMessageBox.ButtonRole.DestructiveRole)
        go.clicked.connect(start)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.box = box
        box.open()
        return box

    def ask_remove(self, refs: list[str]) -> JobRecord:
        """Preview removing ``refs`` (a job), then ask; removing is another job."""
        ws = self.context.ws

        def ask(plan: history.RemovalPlan) -> None:
            text, details = removal_text(plan)
            title = f"Remove {plural(len(plan.refs), 'version')}"
            self._confirm(title, text, details, "Remove", lambda: self.remove(list(plan.refs)))

        return self.context.runner.submit(
            f"Read what removing {', '.join(refs)} frees",
            lambda _ctx: history.plan_removal(ws, refs), ask,
        )  # fmt: skip

    def remove(self, refs: list[str]) -> JobRecord:
        """Remove versions (labels too: the confirmation named them) and free their chunks."""
        ws = self.context.ws

        def run(ctx: JobContext) -> history.RemovalResult:
            return history.remove_versions(ws, refs, force=True, ctx=ctx,
                                           lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(r: history.RemovalResult) -> None:
            self.context.notify(
                f"Removed {', '.join(r.plan.refs)}; freed {human_bytes(r.freed_bytes)}"
            )
            if self.context.current_ref in r.plan.refs:
                self.clear_details()
            self.context.apply_changes(ws, r.changes)

        title = f"Remove {', '.join(refs)}"
        return self.context.runner.submit(title, run, done, writes=ws.repo.root)

    def ask_gc(self) -> JobRecord:
        """Preview garbage collection (a job), then ask."""
        ws = self.context.ws

        def ask(plan: GcPlan) -> None:
            if not plan.chunks and not plan.temp_files:
                box = QMessageBox(QMessageBox.Icon.Information, "Free unused space",
                                  "Every stored chunk is used by a version: nothing to free.",
                                  QMessageBox.StandardButton.Close, self.parent)  # fmt: skip
                self.box = box
                box.open()
                return
            parts = [
                plural(len(plan.chunks), "chunk") + " no version uses" if plan.chunks else "",
                plural(len(plan.temp_files), "unfinished write") if plan.temp_files else "",
            ]
            text = (f"Delete {' and '.join(p for p in parts if p)}? This frees "
                    f"{_size(plan.bytes)} in {ws.repo.root.name}.")  # fmt: skip
            details = "\n".join([
                *(f"{path} ({human_bytes(n)})" for path, n in plan.temp_files),
                *(f"chunk {cid} ({human_bytes(n)})" for cid, n in plan.chunks),
            ])  # fmt: skip
            self._confirm("Free unused space", text, details, "Delete", self.collect)

        return self.context.runner.submit("Read unused space", lambda _ctx: plan_gc(ws), ask)

    def collect(self) -> JobRecord:
        """Delete what the preview showed (planned again under the writer lock), as a job."""
        ws = self.context.ws

        def done(r: GcResult) -> None:
            self.context.notify(
                f"Deleted {plural(r.deleted_chunks, 'unused chunk')}; freed "
                f"{human_bytes(r.freed_bytes)}")  # fmt: skip
            self.context.apply_changes(ws, r.changes)
            if self.show_report is not None:
                self.show_report(gc_report(r))

        return self.context.runner.submit(
            "Free unused space",
            lambda ctx: collect_garbage(ws, ctx=ctx, lock_timeout=GUI_LOCK_WAIT), done,
            writes=ws.repo.root,
        )  # fmt: skip
