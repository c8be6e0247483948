"""What each maintenance job found, as text for the results dialog (no widgets here).

One :class:`Report` per job kind: a title, a one-line summary, and sections of lines
(per device, per model, metadata records with their files, each problem). The words follow
the CLI's (``verify``, ``scrub``, ``repair``, ``rebalance``, ``gc``, ``export``).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.services.exporting import ExportResult
from modelmanager.services.maintenance import GcResult, VerifyReport
from modelmanager.services.redundancy import MovePlan, RebalanceReport, RepairReport, ScrubReport

Section = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Report:
    """A job's findings: ``ok`` is False when something needs the user (or a repair)."""

    title: str
    summary: str
    ok: bool
    sections: tuple[Section, ...] = ()
    #: True when "Repair now" can help (scrub or verify found damage).
    repairable: bool = False


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind.replace('_', '-')}" for kind, n in counts.items())


def _grouped(by: dict[str, dict[str, int]], what: str) -> tuple[str, ...]:
    return tuple(f"{what} {shown(key)}: {_counts(c)}" for key, c in sorted(by.items()))


def _nonempty(*sections: Section) -> tuple[Section, ...]:
    return tuple(s for s in sections if s[1])


def verify_report(r: VerifyReport, quick: bool, ref: str | None = None) -> Report:
    """``verify`` (quick: presence and sizes; full: every byte re-hashed)."""
    kind = "Quick verify" if quick else "Full verify"
    what = ref or "the repository"
    checked = (f"{plural(r.versions, 'version')}, {plural(r.chunks, 'chunk')} "
               f"({human_bytes(r.bytes)})")  # fmt: skip
    if r.ok:
        summary = f"{kind} of {what}: all good ({checked} checked)."
    else:
        summary = f"{kind} of {what} found {plural(len(r.problems), 'problem')} in {checked}."
    per_model: dict[str, dict[str, int]] = {}
    for p in r.problems:
        for model in sorted({v.split("@")[0] for v in p.versions}):
            per_model.setdefault(model, {}).setdefault(p.kind, 0)
            per_model[model][p.kind] += 1
    metadata = tuple(shown(f"{p.subject}: {p.detail}") for p in r.problems if p.kind == "metadata")
    others = tuple(
        shown(f"{p.kind} {p.subject}: {p.detail}"
              + (f" (needed by {', '.join(p.versions)})" if p.versions else ""))
        for p in r.problems if p.kind != "metadata"
    )  # fmt: skip
    transient = tuple(f"chunk {c}: failed once, then read correctly" for c in r.transient)
    sections = _nonempty(("Per model", _grouped(per_model, "model")),
                         ("Metadata records", metadata), ("Problems", others),
                         ("Transient read errors", transient))  # fmt: skip
    return Report(kind, summary, r.ok, sections, repairable=not r.ok)


def scrub_report(r: ScrubReport) -> Report:
    """``scrub``: every stored piece and every metadata copy checked."""
    found = [
        plural(len(r.missing), "missing piece") if r.missing else "",
        plural(len(r.corrupt), "corrupt piece") if r.corrupt else "",
        plural(len(r.under_replicated), "under-replicated chunk") if r.under_replicated else "",
        plural(len(r.lost), "lost chunk") if r.lost else "",
        f"{len(r.metadata)} metadata {'copy' if len(r.metadata) == 1 else 'copies'} to rewrite"
        if r.metadata else "",
    ]  # fmt: skip
    checked = f"{plural(r.chunks, 'chunk')}, {plural(r.pieces, 'piece')}"
    summary = (f"Scrub: {checked}: all good." if r.ok
               else f"Scrub: {checked}: {', '.join(f for f in found if f)}.")  # fmt: skip
    pieces = (
        *(f"missing {x.piece} of chunk {x.chunk} on {x.device}" for x in r.missing),
        *(shown(f"corrupt {x.piece} on {x.device}: {x.detail}") for x in r.corrupt),
        *(f"chunk {x.chunk} ({x.policy}) survives {plural(x.tolerates, 'lost device')}, "
          f"needs {x.needs}" for x in r.under_replicated),
        *(f"lost chunk {x.chunk} (needed by {', '.join(x.versions)})" for x in r.lost),
    )  # fmt: skip
    sections = _nonempty(
        ("Per device", _grouped(r.by("device"), "device")),
        ("Per model", _grouped(r.by("models"), "model")),
        ("Metadata records", tuple(shown(m) for m in r.metadata)),
        ("Pieces", pieces),
        ("Transient read errors", tuple(f"{x.piece} on {x.device}" for x in r.transient)),
    )
    return Report("Scrub", summary, r.ok, sections, repairable=not r.ok)


def repair_report(r: RepairReport) -> Report:
    """``repair``: what was rebuilt, removed, lost or not repaired."""
    summary = (f"Repair: {plural(r.repaired_chunks, 'chunk')} repaired, "
               f"{plural(r.written_pieces, 'piece')} ({human_bytes(r.written_bytes)}) written, "
               f"{plural(r.removed_pieces, 'piece')} removed.")  # fmt: skip
    problems = (
        *((shown(f"held back: {r.held_back}"),) if r.held_back else ()),
        *(shown(f"device {d} took no new pieces: {why}")
          for d, why in sorted(r.device_problems.items())),
        *(f"lost: chunk {x.chunk} (affects {', '.join(x.versions)})" for x in r.lost),
        *(shown(f"not repaired: chunk {x.chunk}: {x.reason}") for x in r.failed),
    )  # fmt: skip
    return Report("Repair", summary, r.ok, _nonempty(("Problems", problems)))


def move_plan_text(plan: MovePlan) -> tuple[str, str]:
    """A rebalance preview's question and its details."""
    onto = ", ".join(f"{human_bytes(n)} onto {d}" for d, n in sorted(plan.onto().items()))
    text = (
        f"Move {plural(len(plan.moves), 'piece')} ({human_bytes(plan.bytes)}): {onto}?"
        if plan.moves
        else "Every piece is where placement puts it: nothing to move."
    )
    details = [f"{m.piece.key}: {m.piece.device.name} → {m.dest.name}" for m in plan.moves]
    details += [shown(f"stuck: {s.piece} on {s.device}: {s.reason}") for s in plan.stuck]
    return text, "\n".join(details)


def rebalance_report(r: RebalanceReport) -> Report:
    """``rebalance``: pieces moved and the ones that could not be."""
    failed = tuple(shown(f"not moved: {x.piece} ({x.device}): {x.reason}") for x in r.failed)
    summary = (f"Rebalance: moved {plural(r.moved_pieces, 'piece')} "
               f"({human_bytes(r.moved_bytes)}).")  # fmt: skip
    return Report("Rebalance", summary, not r.failed, _nonempty(("Not moved", failed)))


def gc_report(r: GcResult) -> Report:
    """``gc``: unused chunks and leftover temporary files deleted, bytes freed."""
    summary = (f"Deleted {plural(r.deleted_chunks, 'unused chunk')} and "
               f"{plural(len(r.plan.temp_files), 'unfinished write')}; freed "
               f"{human_bytes(r.freed_bytes)}.")  # fmt: skip
    lines = (*(f"chunk {c} ({human_bytes(n)})" for c, n in r.plan.chunks),
             *(shown(f"{p} ({human_bytes(n)})") for p, n in r.plan.temp_files))  # fmt: skip
    return Report("Free unused space", summary, True, _nonempty(("Deleted", lines)))


def export_report(r: ExportResult) -> Report:
    """``export``: where the version's files went."""
    summary = (f"Exported {r.manifest.ref}: {plural(len(r.files), 'file')} "
               f"({human_bytes(r.bytes)}) to {r.dest}.")  # fmt: skip
    notes = ((f"{plural(r.degraded_chunks, 'chunk')} read from a degraded layout; run Scrub",)
             if r.degraded_chunks else ())  # fmt: skip
    files = tuple(shown(str(p)) for p in r.files)
    return Report("Export", shown(summary), True, _nonempty(("Files", files), ("Notes", notes)))
