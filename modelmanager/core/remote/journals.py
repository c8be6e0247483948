"""Label journals across a repository and a remote: which moves each side lacks, who wins.

Every label move is a sealed journal record with a unique key
(``models/<model>/journal/<time>-<random>.json``, ``core.repo.journal``). A remote keeps the
same records under the same keys, so reconciling two sides is a set difference of keys: each
side receives the entries it lacks. Entries the two sides share are where they last agreed; a
label moved on both sides since (each has entries about it the other lacks) to different
versions is a conflict. The newest move by journal time wins, unless the caller prefers one
side. Entries are recorded in the receiving side's numbers (a version renumbered on a busy
remote): ``old`` and ``new`` name the version as that side numbers it; a number the receiving
side does not hold stays as it was (history only). A label travels only when the version it
ends on is on both sides (or it was removed); otherwise it waits for that version.

This module plans; ``modelmanager.services.remotes`` applies the plan through the record APIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from modelmanager.core.remote.versions import read_version, version_identity
from modelmanager.core.repo.journal import journal_prefix
from modelmanager.core.repo.names import is_label
from modelmanager.core.repo.versions import VersionStore
from modelmanager.core.storage import BlobNotFound
from modelmanager.errors import IntegrityError

#: Which side wins a conflicting label move: the newer move, or always one side.
Prefer = Literal["newest", "local", "remote"]
Entry = dict[str, Any]


def label_entries(store: VersionStore, model: str) -> dict[str, Entry]:
    """Every intact label move in the journal of ``model`` on ``store``, by record key."""
    out = {}
    for key, _size in store.records.keys(journal_prefix(model)):
        if key.count("/") != 3 or not key.endswith(".json"):
            continue
        try:
            doc = store.records.read(key)
        except (BlobNotFound, IntegrityError):
            continue  # a damaged entry is reported by verify; a replica may heal it
        if doc.get("kind") == "label" and isinstance(doc.get("label"), str):
            out[key] = doc
    return out


def version_pairs(local: VersionStore, remote: VersionStore, model: str) -> dict[int, int]:
    """Each local version number of ``model`` and the remote's number of the same version."""
    theirs: dict[str, int] = {}
    for seq in remote.version_numbers(model):
        m = read_version(remote, model, seq)
        if m is not None:
            theirs.setdefault(version_identity(m), seq)
    pairs = {}
    for seq in local.version_numbers(model):
        m = read_version(local, model, seq)
        if m is not None and version_identity(m) in theirs:
            pairs[seq] = theirs[version_identity(m)]
    return pairs


def _order(item: tuple[str, Entry]) -> tuple[str, str]:
    return str(item[1].get("time", "")), item[0]


def _state(entry: Entry) -> int | None:
    new = entry.get("new")
    return new if isinstance(new, int) and not isinstance(new, bool) else None


def _translate(entry: Entry, numbers: Mapping[int, int]) -> Entry:
    """``entry`` with ``old`` and ``new`` in the other side's numbers (unknown ones kept)."""
    out = dict(entry)
    for k in ("old", "new"):
        v = entry.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            out[k] = numbers.get(v, v)
    return out


def _who(entry: Entry) -> str:
    when = str(entry.get("time", ""))[11:16] or "?"
    return f"{entry.get('user', '?')}@{entry.get('host', '?')}, {when}"


def _seq(v: int | None) -> str:
    return "removed" if v is None else str(v)


@dataclass(frozen=True)
class JournalConflict:
    """A label both sides moved, differently, since they last agreed; and which move won."""

    model: str
    label: str
    here: int | None  # where this repository's last move put it (its numbers; None: removed)
    here_by: str  # "user@host, HH:MM" (UTC) of that move
    remote: int | None  # where the remote's last move put it (the remote's numbers)
    remote_by: str
    kept: Literal["here", "remote", "neither"]
    reason: str  # "the newer", "yours (--keep-local)", "the remote's (--move-labels)" ...

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "label": self.label, "here": self.here,
                "here_by": self.here_by, "remote": self.remote, "remote_by": self.remote_by,
                "kept": self.kept, "reason": self.reason}  # fmt: skip

    def __str__(self) -> str:
        return (f"{self.label}: here -> {_seq(self.here)} ({self.here_by}), remote -> "
                f"{_seq(self.remote)} ({self.remote_by}); kept {self.reason}")  # fmt: skip


@dataclass
class JournalPlan:
    """What to copy each way, which label records to set, and what to say."""

    to_remote: dict[str, Entry] = field(default_factory=dict)  # key -> entry, remote numbers
    to_local: dict[str, Entry] = field(default_factory=dict)  # key -> entry, local numbers
    local_state: dict[str, int | None] = field(default_factory=dict)  # label -> local number
    remote_state: dict[str, int | None] = field(default_factory=dict)  # label -> remote number
    reassert: dict[str, int | None] = field(default_factory=dict)  # label -> local number to
    # record afresh here (a preferred side whose move is not the newest)
    conflicts: list[JournalConflict] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # labels whose version one side lacks

    @property
    def journaled(self) -> set[str]:
        """Every label this plan decides (the others have no journal on either side)."""
        return set(self.local_state) | set(self.waiting) | set(self.reassert)


def plan_journals(
    model: str, local: Mapping[str, Entry], remote: Mapping[str, Entry],
    pairs: Mapping[int, int], prefer: Prefer = "newest",
) -> JournalPlan:  # fmt: skip
    """Reconcile the label journals of ``model``: ``local`` and ``remote`` entries by key,
    ``pairs`` the local -> remote numbers of the versions both hold."""
    back = {r: loc for loc, r in pairs.items()}

    def both(side: str, seq: int | None) -> tuple[int | None, int | None] | None:
        """(local number, remote number) of a state given in ``side``'s numbers; None when
        that version is not on both sides."""
        if seq is None:
            return None, None
        if side == "here":
            return (seq, pairs[seq]) if seq in pairs else None
        return (back[seq], seq) if seq in back else None

    plan = JournalPlan()
    labels = {e["label"] for e in (*local.values(), *remote.values())}
    for label in sorted(x for x in labels if is_label(x)):
        mine = {k: e for k, e in local.items() if e["label"] == label}
        theirs = {k: e for k, e in remote.items() if e["label"] == label}
        only_mine = {k: e for k, e in mine.items() if k not in theirs}
        only_theirs = {k: e for k, e in theirs.items() if k not in mine}
        # (both holding the same moves, the labels are still set from them: a label record a
        # race left off its journal is healed)
        last_key, last = max({**theirs, **mine}.items(), key=_order)
        newest = "here" if last_key in mine else "remote"
        side, state = newest, _state(last)
        conflict = None
        if only_mine and only_theirs:
            here_e = max(mine.items(), key=_order)[1]
            there_e = max(theirs.items(), key=_order)[1]
            here, there = _state(here_e), _state(there_e)
            if both("here", here) is None or both("here", here) != both("remote", there):
                if prefer == "local":
                    side, state, reason = "here", here, "yours (--keep-local)"
                elif prefer == "remote":
                    side, state, reason = "remote", there, "the remote's (--move-labels)"
                else:
                    reason = "the newer"
                conflict = (here, _who(here_e), there, _who(there_e), reason)
        resolved = both(side, state)
        if conflict is not None:
            here, here_by, there, there_by, reason = conflict
            kept: Literal["here", "remote", "neither"] = "here" if side == "here" else "remote"
            if resolved is None:
                kept, reason = "neither", "both as they are until its version is on both sides"
            plan.conflicts.append(JournalConflict(model, label, here, here_by, there, there_by,
                                                  kept, reason))  # fmt: skip
            if resolved is not None and side != newest:
                plan.reassert[label] = resolved[0]  # recorded afresh here, then planned again
                continue
        if resolved is None:
            plan.waiting.append(label)  # the version it ends on is not on both sides yet
            continue
        plan.to_remote.update({k: _translate(e, pairs) for k, e in only_mine.items()})
        plan.to_local.update({k: _translate(e, back) for k, e in only_theirs.items()})
        plan.local_state[label], plan.remote_state[label] = resolved
    return plan
