"""Labels across a repository and a remote: their journals reconciled, both ways, by push and pull.

Each side receives the label moves (sealed journal records, same keys) it lacks, in its own
version numbers; then each label record is set to what its journal now says, through the
normal APIs: here :meth:`Repository.set_label` / :meth:`Repository.delete_label` when this
side's move must be recorded afresh, else :meth:`Repository.apply_label_move` (the
journal-driven write that ``repair`` also does); on the remote
:meth:`RemoteRepository.write_label`. The journal entries always go first, so a crash between
the two leaves the journal right and ``repair`` finishes the label here. Labels no side has a
journal for (written before journals) follow the version moved, as before
(``core.remote.labels``). Must run under the writer lock.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from modelmanager.core.remote.journals import (
    JournalConflict,
    Prefer,
    label_entries,
    plan_journals,
    version_pairs,
)
from modelmanager.core.remote.labels import LabelConflict, plan_labels
from modelmanager.core.remote.layout import RemoteRepository
from modelmanager.core.repo.repository import Repository
from modelmanager.errors import NotFoundError

Conflict = LabelConflict | JournalConflict


@dataclass(frozen=True)
class LabelSync:
    """What one reconciliation did: labels set on each side, conflicts, labels left waiting."""

    here: tuple[str, ...]  # label records set in this repository
    remote: tuple[str, ...]  # label records set on the remote
    conflicts: tuple[Conflict, ...]
    waiting: tuple[str, ...]  # a label whose version one side lacks: it travels with it


def _legacy(
    repo: Repository, remote: RemoteRepository, model: str, seq: int, there: int,
    journaled: set[str], push: bool, move: bool,
) -> tuple[list[str], list[Conflict]]:  # fmt: skip
    """Labels without any journal: those on the moved version follow it (the old rule)."""
    here = {k: v for k, v in repo.read_labels(model).items() if k not in journaled}
    theirs = {k: v for k, v in remote.read_labels(model).items() if k not in journaled}
    if push:
        plan = plan_labels(model, seq, here, theirs, move=move, target_seq=there)
        for label in plan.labels:
            remote.write_label(model, label, there, plan.previous[label])
    else:
        plan = plan_labels(model, there, theirs, here, move=move, target_seq=seq)
        for label in plan.labels:
            repo.set_label(model, label, seq)
    return list(plan.labels), list(plan.conflicts)


def sync_labels(repo: Repository, remote: RemoteRepository, model: str, *, local_seq: int,
                remote_seq: int, push: bool, prefer: Prefer = "newest",
                move: bool = False) -> LabelSync:  # fmt: skip
    """Reconcile the labels of ``model`` both ways (the remote only when it can be written),
    after version ``local_seq`` here / ``remote_seq`` there was pushed or pulled."""
    publish = not remote.spec.read_only
    theirs = label_entries(remote, model)
    mine = label_entries(repo, model)
    # every version both sides hold, by content (no manifest is read when there is no journal)
    pairs = version_pairs(repo, remote, model) if mine or theirs else {}
    pairs[local_seq] = remote_seq
    plan = plan_journals(model, mine, theirs, pairs, prefer)
    conflicts: list[Conflict] = list(plan.conflicts)
    reasserted = list(plan.reassert)
    if plan.reassert:  # the preferred side's move is not the newest: record it afresh here
        for label, seq in plan.reassert.items():
            with contextlib.suppress(NotFoundError):  # a version or label gone meanwhile
                if seq is None:
                    repo.delete_label(model, label)
                else:
                    repo.set_label(model, label, seq)
        mine = label_entries(repo, model)
        plan = plan_journals(model, mine, theirs, pairs, prefer)
    set_here, set_there = list(reasserted), []
    for key, doc in plan.to_local.items():  # the journal first: it is the truth
        with contextlib.suppress(FileExistsError):  # copied meanwhile by another process
            repo.records.write(key, doc, exclusive=True)
    if publish:
        for key, doc in plan.to_remote.items():
            remote.records.write(key, doc)
    now_here = repo.read_labels(model)
    for label, seq in plan.local_state.items():
        if now_here.get(label) != seq:
            repo.apply_label_move(model, label, seq, now_here.get(label))
            set_here.append(label)
    if publish:
        now_there = remote.read_labels(model)
        for label, rseq in plan.remote_state.items():
            if now_there.get(label) != rseq:
                remote.write_label(model, label, rseq, now_there.get(label))
                set_there.append(label)
    journaled = {e["label"] for e in (*mine.values(), *theirs.values())}
    if publish or not push:
        old, old_conflicts = _legacy(repo, remote, model, local_seq, remote_seq, journaled,
                                     push, move)  # fmt: skip
        (set_there if push else set_here).extend(old)
        conflicts += old_conflicts
    return LabelSync(tuple(sorted(set(set_here))), tuple(sorted(set(set_there))),
                     tuple(conflicts), tuple(plan.waiting))  # fmt: skip
