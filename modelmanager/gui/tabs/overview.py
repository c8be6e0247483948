"""The Overview tab: the shown version's figures, its memory estimate in a chosen dtype, the
versions that share its weights, whether it is kept hot, and its model card (each of the last
three found by a read job of its own)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPlainTextEdit, QWidget

from modelmanager.core.analysis.lineage import Lineage
from modelmanager.core.analysis.memory import TARGETS, estimate
from modelmanager.core.jobs import JobContext
from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, human_count
from modelmanager.errors import ModelManagerError
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import JobRecord
from modelmanager.services import history, lineage, model_card, pinning

FIELDS = ("Version", "Created", "Message", "Labels", "Files", "Logical size", "Stored size",
          "Stored / logical", "Redundancy", "Parameters", "Dtype mix", "Memory: inference",
          "Memory: training (Adam)", "Architecture", "Related", "Hot tier")  # fmt: skip
#: Relations the Related line lists (the rest are counted).
RELATED_SHOWN = 3


def plain_label(text: str = "") -> QLabel:
    """A selectable label that never renders rich text (names come from files)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class OverviewTab(QWidget):
    """One labelled line per figure of the shown version ("—" when none is shown)."""

    def __init__(self, context: WindowContext | None = None) -> None:
        super().__init__()
        self.context = context  # with one, each shown version's relatives are looked up
        self.details: history.VersionDetails | None = None
        self.lineage: Lineage | None = None
        form = self.form = QFormLayout(self)
        self.ov: dict[str, QLabel] = {}
        for key in FIELDS:
            self.ov[key] = plain_label("—")
            form.addRow(f"{key}:", self.ov[key])
        self.estimate_dtype = QComboBox()
        self.estimate_dtype.addItems(list(TARGETS))
        self.estimate_dtype.setMaximumWidth(160)
        self.estimate_dtype.setToolTip(
            "Weights loaded as: the stored dtypes, or another precision. Training counts weights, "
            "gradients, Adam's two fp32 moments and an fp32 master copy for 16-bit weights; "
            "activations are not included."
        )
        self.estimate_dtype.currentTextChanged.connect(lambda _t: self._show_memory())
        form.insertRow(11, "Estimate memory as:", self.estimate_dtype)
        # The card (README.md of the folder imported) as plain text: never rendered, escaped.
        self.card = QPlainTextEdit()
        self.card.setReadOnly(True)
        self.card.setPlaceholderText("—")
        form.addRow("Model card:", self.card)
        form.setRowVisible(self.card, False)  # shown once a version with a card is

    def clear(self) -> None:
        """Show no version."""
        self.details = None
        self.lineage = None
        for label in self.ov.values():
            label.setText("—")
        self.card.setPlainText("")
        self.form.setRowVisible(self.card, False)

    def show_details(self, details: history.VersionDetails, policy: str) -> None:
        """Fill every line from ``details``; ``policy`` is the model's redundancy policy."""
        self.details = details
        m = details.manifest
        own = sorted(k for k, v in details.labels.items() if v == m.seq)
        mix = m.dtype_bytes()
        weights = sum(mix.values())
        values = {
            "Version": m.ref, "Created": m.created[:19].replace("T", " "), "Message": m.message,
            "Labels": ", ".join(own) or "—", "Files": str(len(m.files)),
            "Logical size": human_bytes(m.logical_bytes),
            "Stored size": human_bytes(details.stored_bytes),
            # Stored bytes count every copy or fragment: with redundancy this exceeds 1.
            "Stored / logical": (
                f"{details.stored_bytes / m.logical_bytes:.3f}" if m.logical_bytes else "—"
            ),
            "Redundancy": policy,
            "Parameters": human_count(m.parameters),
            "Dtype mix": ", ".join(f"{k} {100 * v / weights:.0f}%" for k, v in sorted(mix.items()))
            or "—",
            "Architecture": str(m.metadata.get("architecture", "—")),
        }  # fmt: skip
        for key, text in values.items():
            self.ov[key].setText(shown(text))  # message and metadata come from files
        self._show_memory()
        self.lineage = None
        self.ov["Related"].setText("—")
        self.card.setPlainText("")
        if self.context is not None:
            self.find_related(self.context)
            self.find_extras(self.context)

    def find_extras(self, context: WindowContext) -> JobRecord | None:
        """Read the shown version's hot state and model card in a read job; the Hot tier line
        and the card show them (ignored when another version is shown by then)."""
        if self.details is None:
            return None
        m, ws = self.details.manifest, context.ws
        ref = m.ref
        self.ov["Hot tier"].setText("looking…")

        def run(_ctx: JobContext) -> tuple[str, str]:
            try:
                hot = pinning.pin_summary(ws.repo, m.model, m.seq)
            except ModelManagerError as e:
                hot = f"not read: {e.message}"
            try:
                card = model_card.read_card(ws, ref)
            except ModelManagerError as e:  # a missing chunk: say so, never a traceback
                return hot, f"not read: {e.message}"
            if card is None:
                return hot, ""
            return hot, card.text + ("\n[… cut: only the card's start is shown]"
                                     if card.truncated else "")  # fmt: skip

        def done(result: tuple[str, str]) -> None:
            if self.details is None or self.details.manifest.ref != ref:
                return
            hot, card = result
            self.ov["Hot tier"].setText(shown(hot))
            self.card.setPlainText(card)  # read_card escaped it line by line
            self.form.setRowVisible(self.card, bool(card))

        return context.runner.submit(f"Read the hot state and card of {ref}", run, done)

    def find_related(self, context: WindowContext) -> JobRecord | None:
        """Look up the shown version's relatives in a read job; the Related line shows them."""
        if self.details is None:
            return None
        ref, ws = self.details.manifest.ref, context.ws
        self.ov["Related"].setText("looking…")

        def run(_ctx: JobContext) -> Lineage | str:
            try:
                return lineage.related(ws, ref)
            except ModelManagerError as e:  # removed meanwhile, unreadable: one clear line
                return f"not read: {e.message}"

        def done(result: Lineage | str) -> None:
            if isinstance(result, Lineage):
                self.show_related(result)
            elif self.details is not None and self.details.manifest.ref == ref:
                self.ov["Related"].setText(shown(result))

        return context.runner.submit(f"Read versions related to {ref}", run, done)

    def show_related(self, lin: Lineage) -> None:
        """Fill the Related line from ``lin`` (ignored when another version is shown now)."""
        if self.details is None or self.details.manifest.ref != lin.ref:
            return
        self.lineage = lin
        lines = [r.wording for r in lin.related[:RELATED_SHOWN]]
        if len(lin.related) > RELATED_SHOWN:
            lines.append(f"and {len(lin.related) - RELATED_SHOWN} more")
        if not lines:
            lines.append("shares no tensor with any other version")
        if lin.note:
            lines.append(f"({lin.note})")
        self.ov["Related"].setText("\n".join(map(shown, lines)))  # names come from files
        self.ov["Related"].setToolTip(
            "Shares of this version's tensor bytes, from the tensor digests in the manifests "
            "(no weights read). 90 % or more: likely a fine-tune of the older one; 50 % or "
            "more: probably derived; a full fine-tune changes every tensor and shows nothing."
        )

    def _show_memory(self) -> None:
        if self.details is None:
            return
        e = estimate(self.details.manifest.dtype_bytes(), self.estimate_dtype.currentText())
        self.ov["Memory: inference"].setText(human_bytes(e.inference))
        self.ov["Memory: training (Adam)"].setText(
            human_bytes(e.training) if e.training is not None else "— (not trained in this dtype)"
        )
