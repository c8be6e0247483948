"""Which labels travel with a version, push or pull alike.

The labels that point at the version on the sending side go to the receiving side. One the
receiving side already has on another version is a conflict: reported, and kept as it is unless
the caller asks to move it. Labels never travel alone: they follow the version they point at.
The two sides may number that version differently (a push renumbered on a busy remote): the
labels on version ``seq`` of the sending side go to version ``target_seq`` of the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelmanager.core.repo.names import is_label


@dataclass(frozen=True)
class LabelConflict:
    """A label the receiving side has on another version, left there."""

    model: str
    label: str
    wanted: int  # the version the sending side's label points at
    kept: int  # the version the receiving side's label still points at

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "label": self.label, "wanted": self.wanted,
                "kept": self.kept}  # fmt: skip

    def __str__(self) -> str:
        return (f"label {self.label!r} of {self.model} stays on version {self.kept} "
                f"(the other side has it on version {self.wanted})")  # fmt: skip


@dataclass(frozen=True)
class LabelPlan:
    """The labels to write on the receiving side (new or moved) and the conflicts left alone."""

    labels: tuple[str, ...]
    previous: Mapping[str, int | None]  # where each label to write pointed before (None: new)
    conflicts: tuple[LabelConflict, ...]


def plan_labels(
    model: str, seq: int, source: Mapping[str, int], target: Mapping[str, int], *,
    move: bool = False, target_seq: int | None = None,
) -> LabelPlan:  # fmt: skip
    """The labels of version ``seq`` on the ``source`` side and what to do with each on the
    ``target`` side, where that version is ``target_seq`` (default: the same number). A name
    that is no valid label (a stray file on a remote) is skipped."""
    labels, previous, conflicts = [], {}, []
    wanted = seq if target_seq is None else target_seq
    for label in sorted(k for k, n in source.items() if n == seq and is_label(k)):
        there = target.get(label)
        if there == wanted:
            continue  # already there
        if there is not None and not move:
            conflicts.append(LabelConflict(model, label, wanted=wanted, kept=there))
            continue
        labels.append(label)
        previous[label] = there
    return LabelPlan(tuple(labels), previous, tuple(conflicts))
