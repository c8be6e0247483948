"""The Model menu (and the model's tree menu): Redundancy policy…, Codec…, Recompress… and
Remove all versions….

Each dialog's current state and preview are read as jobs (they touch the devices); the change
runs the service the CLI runs (``policy set``, ``codec set``) on the repository's writer lane,
and the window refreshes from what it changed. A policy the devices cannot take is refused in
the dialog with the service's one line, before anything is written. Recompress shows the stored
size it leaves before it starts; removing every version goes through the same preview and
service as Version > Remove… (``rm``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from modelmanager.core.codecs.base import CodecSettings
from modelmanager.core.jobs import JobContext
from modelmanager.core.redundancy.plans import PolicyPlan
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.errors import ModelManagerError
from modelmanager.gui.changes import merged
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT, JobRecord
from modelmanager.gui.policy_dialogs import CodecDialog, PolicyDialog
from modelmanager.gui.recompress_dialog import RecompressDialog
from modelmanager.gui.report_dialog import ReportDialog
from modelmanager.gui.reports import Report, repair_report
from modelmanager.services import Workspace, policies
from modelmanager.services.recompress import (
    RecompressPreview,
    RecompressReport,
    preview_recompress,
    recompress,
)


def _preview(ws: Workspace, policy: str, model: str | None) -> PolicyPlan | str:
    """The plan, or the service's one-line refusal (shown in the dialog, not as a failure)."""
    try:
        return policies.preview_policy(ws, policy, model)
    except ModelManagerError as exc:
        return str(exc)


class ModelActions:
    """Redundancy policy and codec of the shown model (or of the repository)."""

    def __init__(
        self, context: WindowContext, parent: QWidget, shown_model: Callable[[], str | None],
        ask_remove: Callable[[list[str]], object] | None = None,
    ) -> None:  # fmt: skip
        self.context = context
        #: Version > Remove…'s preview-then-ask (the window's Cleanup), for every version.
        self.ask_remove = ask_remove
        self.parent = parent
        #: The model the tabs show (None: none; the dialogs then set the repository default).
        self.shown_model = shown_model
        self.policy_dialog: PolicyDialog | None = None  # the last dialogs (tests drive them)
        self.codec_dialog: CodecDialog | None = None
        self.recompress_dialog: RecompressDialog | None = None
        self._previewing: JobRecord | None = None  # the recompress preview being read
        self.dialog: ReportDialog | None = None  # the last results dialog

    # -- redundancy policy ----------------------------------------------------------------

    def ask_policy(self, model: str | None = None) -> JobRecord:
        """Model > Redundancy policy…: read the current policy and devices, then the dialog."""
        ws, model = self.context.ws, model or self.shown_model()

        def read(_ctx: JobContext) -> tuple[str, int]:
            repo = ws.repo
            repo.chunks.refresh()
            current = repo.policy_for(model) if model else repo.policies.default
            return str(current), repo.chunks.placeable_count()

        def show(state: tuple[str, int]) -> None:
            dialog = PolicyDialog(model, state[0], state[1], self.parent)
            dialog.preview_wanted.connect(lambda p, m: self.preview(dialog, ws, p, m))
            dialog.apply_wanted.connect(lambda p, m: self.set_policy(ws, p, m))
            self.policy_dialog = dialog
            dialog.open()
            dialog.request_preview()

        return self.context.runner.submit("Read the redundancy policy", read, show)

    def preview(self, dialog: PolicyDialog, ws: Workspace, policy: str,
                model: str | None) -> JobRecord:  # fmt: skip
        """What ``policy`` would write and remove, into ``dialog``."""

        def show(result: PolicyPlan | str) -> None:
            if isinstance(result, str):
                dialog.show_refusal(policy, model, result)
            else:
                dialog.show_plan(policy, model, result)

        return self.context.runner.submit(
            f"Read what {policy} would change", lambda _ctx: _preview(ws, policy, model), show
        )

    def set_policy(self, ws: Workspace, policy: str, model: str | None) -> JobRecord:
        """Set the policy and convert the stored chunks to it (``policy set``), as a job."""
        what = shown(model) if model else "the repository"

        def run(ctx: JobContext) -> policies.PolicyChange:
            return policies.set_policy(ws, policy, model, ctx=ctx, lock_timeout=GUI_LOCK_WAIT)

        def done(r: policies.PolicyChange) -> None:
            base = repair_report(r.report)
            report = Report(f"Redundancy policy {policy}",
                            f"{what} now keeps {policy}. {base.summary}", r.report.ok,
                            base.sections)  # fmt: skip
            self._show(report)
            self.context.apply_changes(ws, r.changes)

        return self.context.runner.submit(f"Set {what} to {policy}", run, done,
                                          writes=ws.repo.root)  # fmt: skip

    def _show(self, report: Report) -> ReportDialog:
        dialog = ReportDialog(report, self.parent)
        self.dialog = dialog
        dialog.show()
        self.context.notify(report.summary)
        return dialog

    # -- codec ------------------------------------------------------------------------------

    def ask_codec(self, model: str | None = None) -> JobRecord:
        """Model > Codec…: read the codec new chunks get now, then the dialog."""
        ws, model = self.context.ws, model or self.shown_model()

        def read(_ctx: JobContext) -> CodecSettings:
            repo = ws.repo
            return repo.codec_for(model) if model else repo.policies.codecs.get(
                "*", repo.config.codec)  # fmt: skip

        def show(current: CodecSettings) -> None:
            dialog = CodecDialog(model, current, self.parent)
            dialog.apply_wanted.connect(lambda s, m: self.set_codec(ws, s, m))
            self.codec_dialog = dialog
            dialog.open()

        return self.context.runner.submit("Read the codec", read, show)

    def set_codec(self, ws: Workspace, settings: CodecSettings, model: str | None) -> JobRecord:
        """Set the codec new chunks get (``codec set``), as a job; refresh what it names."""
        what = shown(model) if model else "the repository"

        def done(r: policies.CodecChange) -> None:
            self.context.notify(f"New chunks of {what} get {r.settings.name} "
                                f"(level {r.settings.level})")  # fmt: skip
            self.context.apply_changes(ws, r.changes)

        return self.context.runner.submit(
            f"Set the codec of {what} to {settings.name}",
            lambda _ctx: policies.set_codec(ws, settings, model, lock_timeout=GUI_LOCK_WAIT),
            done, writes=ws.repo.root,
        )  # fmt: skip

    # -- recompress -------------------------------------------------------------------------

    def _model(self, model: str | None) -> str | None:
        model = model or self.shown_model()
        if model is None:
            self.context.notify("Select a model first.")
        return model

    def ask_recompress(self, model: str | None = None) -> JobRecord | None:
        """Model > Recompress…: the model's versions and codec (a job), then the dialog."""
        model = self._model(model)
        if model is None:
            return None
        ws = self.context.ws

        def read(_ctx: JobContext) -> tuple[list[str], CodecSettings]:
            seqs = sorted(ws.repo.version_numbers(model), reverse=True)
            return [f"{model}@{n}" for n in seqs], ws.repo.codec_for(model)

        def show(state: tuple[list[str], CodecSettings]) -> None:
            dialog = RecompressDialog(model, state[0], state[1], self.parent)
            dialog.preview_wanted.connect(lambda s: self.preview_recompress(dialog, ws, s))
            dialog.start_wanted.connect(lambda s: self.recompress(ws, dialog.refs, s))
            self.recompress_dialog = dialog
            dialog.open()
            dialog.request_preview()

        return self.context.runner.submit(f"Read the versions of {model}", read, show)

    def preview_recompress(self, dialog: RecompressDialog, ws: Workspace,
                           settings: CodecSettings) -> JobRecord:  # fmt: skip
        """The stored size ``settings`` would leave (every chunk encoded, nothing written)."""

        def run(ctx: JobContext) -> RecompressPreview | str:
            try:
                return preview_recompress(ws, dialog.refs, settings, ctx=ctx)
            except ModelManagerError as exc:
                return str(exc)

        previous = self._previewing
        if previous is not None and previous.active:
            self.context.runner.cancel(previous.id)  # its codec is no longer the one chosen
        job = self.context.runner.submit(
            f"Read what {settings.name} would store", run,
            lambda p: dialog.show_preview(settings, p),
        )  # fmt: skip
        self._previewing = job
        return job

    def recompress(self, ws: Workspace, refs: list[str], settings: CodecSettings) -> JobRecord:
        """Re-encode every chunk of ``refs`` (``recompress REF`` for each), as a writing job."""
        model = refs[0].split("@")[0] if refs else ""

        def run(ctx: JobContext) -> list[RecompressReport]:
            return [recompress(ws, ref, settings, ctx=ctx, lock_timeout=GUI_LOCK_WAIT)
                    for ref in refs]  # fmt: skip

        def done(reports: list[RecompressReport]) -> None:
            before = reports[0].stored_before if reports else 0
            after = reports[-1].stored_after if reports else 0
            rewritten = sum(r.rewritten for r in reports)
            lines = tuple(f"{shown(r.ref)}: {plural(r.rewritten, 'chunk')} of {r.chunks} "
                          f"rewritten, {human_bytes(r.stored_before)} -> "
                          f"{human_bytes(r.stored_after)}" for r in reports)  # fmt: skip
            summary = (f"Recompressed {shown(model)} with {settings.name}: "
                       f"{plural(rewritten, 'chunk')} rewritten.")  # fmt: skip
            if len(reports) == 1:
                summary += f" Stored {human_bytes(before)} -> {human_bytes(after)}."
            self._show(Report(f"Recompress {shown(model)}", summary, True,
                              (("Versions", lines),)))  # fmt: skip
            self.context.apply_changes(ws, merged(r.changes for r in reports))

        return self.context.runner.submit(
            f"Recompress {model} with {settings.name}", run, done, writes=ws.repo.root
        )

    # -- remove all versions ----------------------------------------------------------------

    def ask_remove_all(self, model: str | None = None) -> JobRecord | None:
        """Model > Remove all versions…: every version of the model, through Remove…'s
        preview (versions, labels, bytes freed) and its service."""
        model = self._model(model)
        if model is None or self.ask_remove is None:
            return None
        ws, ask = self.context.ws, self.ask_remove

        def read(_ctx: JobContext) -> list[str]:
            return [f"{model}@{n}" for n in sorted(ws.repo.version_numbers(model))]

        def show(refs: list[str]) -> None:
            if refs:
                ask(refs)
            else:
                self.context.notify(shown(f"{model} has no version to remove."))

        return self.context.runner.submit(f"Read the versions of {model}", read, show)
