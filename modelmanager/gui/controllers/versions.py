"""The Version menu and the version's context menu: Export…, Verify, Diff with…, Copy
reference, Label…, Push to…, Pin hot / Unpin; and Maintenance > Apply hot tier… (the pins of
every version, so it lives beside Pin hot).

Each runs the service the CLI runs (``export``, ``verify REF``, ``diff``, ``label``, ``push``,
``pin``, ``unpin``) as a job on the window's runner, with progress and Cancel in the Jobs tab,
and ends in a results dialog (a diff shows in History's compare box, a push and a pin in the
status bar). The pin actions show the version's state: "Pinned hot (since …)", checked, once
its pin record is read (a small job run whenever a menu holding them opens).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox, QWidget

from modelmanager.core.jobs import JobContext
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes
from modelmanager.gui.context import WindowContext
from modelmanager.gui.hot_tier_dialog import HotTierDialog
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT, JobRecord
from modelmanager.gui.label_dialog import LabelDialog
from modelmanager.gui.report_dialog import ReportDialog
from modelmanager.gui.reports import export_report, verify_report
from modelmanager.services import Changes, history, hot_tier, pin_records, pinning, remotes
from modelmanager.services.exporting import ExportResult, export_ref
from modelmanager.services.maintenance import VerifyReport, verify


def _is_empty(folder: Path) -> bool:
    """True for a folder that does not exist yet or holds nothing."""
    try:
        return not any(folder.iterdir())
    except FileNotFoundError:
        return True


class VersionActions:
    """What can be done with one version from the window."""

    def __init__(
        self, context: WindowContext, parent: QWidget, shown_ref: Callable[[], str | None]
    ) -> None:
        self.context = context
        self.parent = parent
        #: The version the tabs show, as ``model@N`` (a model's row shows its newest).
        self.shown_ref = shown_ref
        self.chooser: QFileDialog | None = None  # the last folder chooser (tests fill it)
        self.box: QMessageBox | None = None  # the last question
        self.dialog: ReportDialog | None = None  # the last results dialog
        self.label_dialog: LabelDialog | None = None
        self.chooser_box: QInputDialog | None = None  # the last "which version / remote" list
        #: History's compare (older, newer): where Diff with… shows its result.
        self.compare: Callable[[str, str], object] | None = None
        #: The remotes controller's push (ref, remote): Push to… runs it.
        self.push_to: Callable[[str, str], object] | None = None
        #: The Version menu's Pin hot and Unpin (build_menus sets them).
        self.pin_actions: tuple[QAction, QAction] | None = None
        #: The pin state last read, by ref (None: not pinned).
        self.pinned: dict[str, pin_records.Pin | None] = {}
        self.hot_tier_dialog: HotTierDialog | None = None  # the last hot-tier preview

    def _ref(self, ref: str | None) -> str | None:
        ref = ref or self.shown_ref()
        if ref is None:
            self.context.notify("Select a version first.")
        return ref

    def _report(self, dialog: ReportDialog) -> ReportDialog:
        self.dialog = dialog
        dialog.show()
        return dialog

    # -- export ---------------------------------------------------------------------------

    def choose_export(self, ref: str | None = None) -> QFileDialog | None:
        """Version > Export…: choose a folder, then export into it."""
        target = self._ref(ref)
        if target is None:
            return None
        chooser = QFileDialog(self.parent, f"Export {shown(target)} into a folder")
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.fileSelected.connect(lambda folder: self.export(target, Path(folder)))
        self.chooser = chooser
        chooser.open()
        return chooser

    def export(self, ref: str, dest: Path, *, force: bool = False) -> JobRecord | None:
        """Export ``ref`` into ``dest``; a folder with files in it is only written after the
        user agrees to overwrite (``export --force``)."""
        if not force and not _is_empty(dest):
            box = QMessageBox(QMessageBox.Icon.Warning, "Folder is not empty",
                              shown(f"{dest} is not empty. Files of {ref} with the same names "
                                    "are overwritten; other files stay."),
                              QMessageBox.StandardButton.Cancel, self.parent)  # fmt: skip
            go = box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole)
            go.clicked.connect(lambda: self.export(ref, dest, force=True))
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            self.box = box
            box.open()
            return None
        ws = self.context.ws

        def run(ctx: JobContext) -> ExportResult:
            return export_ref(ws, ref, dest, force=force, ctx=ctx)

        def done(result: ExportResult) -> None:
            self.context.notify(export_report(result).summary)
            self._report(ReportDialog(export_report(result), self.parent,
                                      {"Open folder": lambda: open_folder(dest)}))  # fmt: skip

        return self.context.runner.submit(f"Export {ref} to {dest}", run, done)

    # -- verify, copy, label --------------------------------------------------------------

    def verify(self, ref: str | None = None) -> JobRecord | None:
        """Version > Verify: re-hash every chunk the version needs (``verify REF``)."""
        target = self._ref(ref)
        if target is None:
            return None
        ws = self.context.ws

        def done(report: VerifyReport) -> None:
            self._report(ReportDialog(verify_report(report, False, target), self.parent))

        return self.context.runner.submit(
            f"Verify {target}", lambda ctx: verify(ws, target, ctx=ctx), done
        )

    def copy_reference(self, ref: str | None = None) -> None:
        """Version > Copy reference: ``model@N`` on the clipboard, for the command line."""
        target = self._ref(ref)
        if target is not None:
            QGuiApplication.clipboard().setText(target)
            self.context.notify(shown(f"Copied {target}"))

    def ask_label(self, ref: str | None = None) -> JobRecord | None:
        """Version > Label…: read the model's labels (a job), then the dialog."""
        target = self._ref(ref)
        if target is None:
            return None
        ws, model = self.context.ws, target.split("@")[0]

        def read(_ctx: JobContext) -> tuple[dict[str, int], list[dict[str, object]]]:
            return ws.repo.read_labels(model), ws.repo.label_log(model)

        def show(state: tuple[dict[str, int], list[dict[str, object]]]) -> None:
            dialog = LabelDialog(target, state[0], self.parent, journal=state[1])
            dialog.set_label.connect(lambda name: self.set_label(target, name))
            dialog.remove_label.connect(lambda name: self.remove_label(model, name))
            self.label_dialog = dialog
            dialog.open()

        return self.context.runner.submit(f"Read labels of {model}", read, show)

    def set_label(self, ref: str, label: str) -> JobRecord:
        """Point ``label`` at ``ref`` (new or moved), as a writing job."""
        ws = self.context.ws

        def done(r: history.LabelResult) -> None:
            moved = f" (was version {r.previous})" if r.previous is not None else ""
            self.context.notify(shown(f"{r.model}@{r.label} now names {ref}{moved}"))
            self.context.apply_changes(ws, r.changes)

        return self.context.runner.submit(
            f"Label {ref} {label}",
            lambda _ctx: history.set_label(ws, ref, label, lock_timeout=GUI_LOCK_WAIT),
            done, writes=ws.repo.root,
        )  # fmt: skip

    def remove_label(self, model: str, label: str) -> JobRecord:
        """Take ``label`` off ``model``, as a writing job."""
        ws = self.context.ws

        def done(r: history.LabelResult) -> None:
            self.context.notify(shown(f"Removed {r.model}@{r.label} (was version {r.previous})"))
            self.context.apply_changes(ws, r.changes)

        return self.context.runner.submit(
            f"Remove label {model}@{label}",
            lambda _ctx: history.remove_label(ws, model, label, lock_timeout=GUI_LOCK_WAIT),
            done, writes=ws.repo.root,
        )  # fmt: skip

    # -- diff, push ------------------------------------------------------------------------

    def _choose(self, title: str, label: str, items: list[str],
                chosen: Callable[[str], object]) -> QInputDialog:  # fmt: skip
        box = QInputDialog(self.parent)
        box.setWindowTitle(title)
        box.setLabelText(label)
        box.setComboBoxItems(items)
        box.setComboBoxEditable(False)
        box.textValueSelected.connect(chosen)
        self.chooser_box = box
        box.open()
        return box

    def ask_diff(self, ref: str | None = None) -> JobRecord | None:
        """Version > Diff with…: choose another version of the model (its versions are read
        as a job); the diff (``diff A B``, older first) shows in History."""
        target = self._ref(ref)
        if target is None or self.compare is None:
            return None
        ws, (model, _, seq) = self.context.ws, target.rpartition("@")
        compare = self.compare

        def show(numbers: list[int]) -> None:
            others = [f"{model}@{n}" for n in sorted(numbers, reverse=True) if str(n) != seq]
            if not others:
                self.context.notify(shown(f"{model} has no other version to compare with."))
                return

            def diff(other: str) -> None:
                pair = sorted((target, other), key=lambda r: int(r.rpartition("@")[2]))
                compare(pair[0], pair[1])

            self._choose(f"Diff {shown(target)} with…", "Other version:", others, diff)

        return self.context.runner.submit(
            f"Read the versions of {model}", lambda _ctx: ws.repo.version_numbers(model), show
        )

    def ask_push(self, ref: str | None = None) -> JobRecord | None:
        """Version > Push to…: choose a configured remote (read as a job), then push."""
        target = self._ref(ref)
        if target is None or self.push_to is None:
            return None
        push_to = self.push_to

        def show(specs: list[remotes.RemoteSpec]) -> None:
            names = [r.name for r in specs]
            if not names:
                self.context.notify("No remote is configured: add one first "
                                    "(modelmanager remote add NAME URL).", 0)  # fmt: skip
                return
            self._choose(f"Push {shown(target)} to…", "Remote:", names,
                         lambda name: push_to(target, name))  # fmt: skip

        return self.context.runner.submit("Read remotes", lambda _ctx: remotes.list_remotes(),
                                          show)  # fmt: skip

    # -- pin hot, unpin ---------------------------------------------------------------------

    def pin(self, ref: str | None = None) -> JobRecord | None:
        """Version > Pin hot (``pin REF``): the plan is read first (a job); when it demotes
        other pinned versions (the hot device's fill limit) the user is asked, then the same
        plan runs as a writing job with progress."""
        target = self._ref(ref)
        if target is None:
            return None
        ws = self.context.ws

        def ask(plan: pinning.PinPlan) -> None:
            if not plan.demote:
                self.run_pin(target, plan)
                return
            box = QMessageBox(QMessageBox.Icon.Question, "Demote pinned versions?",
                              shown(plan.text() + "."), QMessageBox.StandardButton.Cancel,
                              self.parent)  # fmt: skip
            go = box.addButton("Pin and demote", QMessageBox.ButtonRole.AcceptRole)
            go.clicked.connect(lambda: self.run_pin(target, plan))
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            self.box = box
            box.open()

        return self.context.runner.submit(
            f"Plan pinning {target}", lambda _ctx: pinning.plan_pin(ws.repo, target), ask
        )

    def run_pin(self, ref: str, plan: pinning.PinPlan) -> JobRecord:
        """Execute a previewed pin (refused if it now demotes other versions than shown)."""
        ws = self.context.ws

        def run(ctx: JobContext) -> pinning.PinResult:
            return pinning.pin(ws, ref, ctx=ctx, lock_timeout=GUI_LOCK_WAIT, previewed=plan)

        def done(r: pinning.PinResult) -> None:
            note = (f"; demoted {', '.join(r.demoted)} ({human_bytes(r.freed_bytes)} of hot "
                    "copies dropped)" if r.demoted else "")  # fmt: skip
            made = f"{r.written} new hot copies ({human_bytes(r.written_bytes)})"
            self.context.notify(shown(f"Pinned {r.ref} hot on {r.device}: {made}{note}"))
            self.context.apply_changes(ws, r.changes)
            self.read_pin(r.ref)

        return self.context.runner.submit(f"Pin {ref} hot", run, done, writes=ws.repo.root)

    def unpin(self, ref: str | None = None) -> JobRecord | None:
        """Version > Unpin: the version is no longer kept hot (``unpin REF``); Free unused
        space deletes its hot copies."""
        target = self._ref(ref)
        if target is None:
            return None
        ws = self.context.ws

        def done(unpinned: str) -> None:
            self.context.notify(shown(f"Unpinned {unpinned}; Free unused space deletes its "
                                      "hot copies"))  # fmt: skip
            self.context.apply_changes(ws, Changes(storage=True))
            self.read_pin(unpinned)

        return self.context.runner.submit(
            f"Unpin {target}",
            lambda _ctx: pinning.unpin(ws, target, lock_timeout=GUI_LOCK_WAIT),
            done, writes=ws.repo.root,
        )  # fmt: skip

    # -- the hot-tier job (Maintenance > Apply hot tier…) -----------------------------------

    def ask_hot_tier(self) -> JobRecord:
        """Maintenance > Apply hot tier… (``hot-tier``): the plan is read first (a job,
        nothing written) and shown in a dialog; Apply runs that plan as a writing job."""
        ws = self.context.ws

        def read(_ctx: JobContext) -> tuple[hot_tier.HotTierPlan, float]:
            return hot_tier.plan_hot_tier(ws.repo), pin_records.fill_limit(ws.repo)

        def ask(found: tuple[hot_tier.HotTierPlan, float]) -> None:
            plan, limit = found
            dialog = HotTierDialog(plan, limit, self.parent)
            dialog.accepted.connect(lambda: self.run_hot_tier(plan))
            self.hot_tier_dialog = dialog
            dialog.open()

        return self.context.runner.submit("Read the hot tier's plan", read, ask)

    def run_hot_tier(self, plan: hot_tier.HotTierPlan) -> JobRecord:
        """Execute a previewed hot-tier plan (refused if the plan changed since)."""
        ws = self.context.ws

        def run(ctx: JobContext) -> hot_tier.HotTierResult:
            return hot_tier.apply_hot_tier(ws, previewed=plan, ctx=ctx,
                                          lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(r: hot_tier.HotTierResult) -> None:
            parts = []
            if r.plan.promote:
                parts.append("promoted " + ", ".join(m.ref for m in r.plan.promote))
            if r.plan.demote:
                parts.append("demoted " + ", ".join(m.ref for m in r.plan.demote))
            what = "; ".join(parts) or "no version promoted or demoted"
            self.context.notify(shown(
                f"Hot tier applied: {what} ({human_bytes(r.written_bytes)} copied, "
                f"{human_bytes(r.dropped_bytes)} dropped)"
            ))  # fmt: skip
            self.context.apply_changes(ws, r.changes)
            self.pinned.clear()  # pin states changed: read again when shown
            if self.shown_ref() is not None:
                self.read_pin()

        return self.context.runner.submit("Apply hot tier", run, done, writes=ws.repo.root)

    def read_pin(
        self, ref: str | None = None, actions: tuple[QAction, QAction] | None = None
    ) -> JobRecord | None:
        """Read whether ``ref`` (default: the shown version) is pinned, as a job, then show it
        on ``actions`` (default: the Version menu's Pin hot and Unpin)."""
        target = ref or self.shown_ref()
        acts = actions or self.pin_actions
        if target is None:
            return None
        ws = self.context.ws
        model, _, seq = target.rpartition("@")
        if acts is not None and target in self.pinned:
            show_pin_state(acts, self.pinned[target])  # the last known state meanwhile

        def show(state: pin_records.Pin | None) -> None:
            self.pinned[target] = state
            if acts is not None and (actions is not None or self.shown_ref() == target):
                show_pin_state(acts, state)

        return self.context.runner.submit(
            f"Read pin of {target}", lambda _ctx: pin_records.pin_state(ws.repo, model, int(seq)),
            show,
        )  # fmt: skip

    def add_pin_actions(self, menu: QMenu, ref: str) -> tuple[QAction, QAction]:
        """Pin hot and Unpin for ``ref`` in a context menu, showing its pin once read."""
        pin_act = menu.addAction("Pin hot", lambda: self.pin(ref))
        unpin_act = menu.addAction("Unpin", lambda: self.unpin(ref))
        acts = (pin_act, unpin_act)
        show_pin_state(acts, self.pinned.get(ref))
        self.read_pin(ref, acts)
        return acts


def show_pin_state(actions: tuple[QAction, QAction], state: pin_records.Pin | None) -> None:
    """Pin hot checked and saying since when while the version is pinned; Unpin only then."""
    pin_act, unpin_act = actions
    pin_act.setCheckable(True)
    pin_act.setChecked(state is not None)
    since = state.since[:16].replace("T", " ") if state is not None else ""
    how = "promoted " if state is not None and state.auto else ""
    pin_act.setText(f"Pinned &hot ({how}since {since} UTC)" if state is not None else "Pin &hot")
    tip = ("Pinned: a plain copy of each chunk is kept on a hot-tier device and read first by "
           "loads; choose again to restore missing hot copies" if state is not None else
           "Keep a plain copy of each chunk on a hot-tier device, read first by loads")  # fmt: skip
    if how:
        tip = (
            "Promoted by Apply hot tier for a recent load (demoted again when least recently "
            "used); choose Pin hot to pin it yourself, so it is never demoted for a load"
        )
    pin_act.setToolTip(tip)
    pin_act.setStatusTip(tip)
    unpin_act.setEnabled(state is not None)


def open_folder(folder: Path) -> bool:
    """Show ``folder`` in the system's file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
