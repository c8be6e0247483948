"""The change record: which models writers changed lately, so a cache catches up in O(changes).

``changes.json`` on main (not a metadata record: it is not replicated, and losing it only costs
one full catalog sync) says how many writer sessions changed models (``generation``), which
models the last :data:`KEEP` changes touched (``recent``), and which models a writer is
changing right now (``pending``). Every writer names a model in ``pending`` *before* it changes
anything of that model (a manifest, a label, a removal), synced, and at the end of its session
moves ``pending`` into ``recent`` under a new generation, not synced (a power loss can only
lose that last step, and every number it had is given next to a record still naming the
models as pending). A catalog remembers the (epoch, generation)
it has caught up with and re-reads only the models named after it, plus ``pending``: a writer
that crashed between its change and the end of its session leaves its models pending, so
every reader re-reads them until the next writer settles them.

``epoch`` is random, made with the record: a record deleted, damaged or restored from a backup
is never mistaken for the one a catalog remembers. ``stamp`` is the modification time of
``models/`` when the last writer finished: a model folder added or deleted by hand (or by an
older ModelManager that does not keep this record) changes it, and a reader then reads
everything. ``*`` in ``recent`` or ``pending`` means "anything may have changed".
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelmanager.core.placement import MAIN
from modelmanager.core.repo.records import seal, unseal
from modelmanager.core.storage.atomic import atomic_write, replace_unsynced
from modelmanager.errors import DeviceError, IntegrityError

CHANGES_FILE = "changes.json"
#: How many (generation, model) entries the record keeps, one per model (its newest): a
#: catalog further behind reads all.
KEEP = 1000
#: A session that touched more models than this is recorded as "anything changed".
MANY = 200
#: Anything may have changed (a repair, a session that touched very many models).
EVERYTHING = "*"


@dataclass(frozen=True)
class ChangeLog:
    """What ``changes.json`` holds (see the module docstring)."""

    epoch: str
    generation: int = 0
    #: Every session after this generation is in ``recent`` (older ones were dropped).
    complete_after: int = 0
    recent: tuple[tuple[int, str], ...] = ()
    pending: tuple[str, ...] = ()
    stamp: int = 0

    def since(self, generation: int) -> set[str] | None:
        """The models changed after ``generation`` or being changed now; None when the record
        cannot tell (too far behind, ahead of it, or "anything changed")."""
        if not self.complete_after <= generation <= self.generation:
            return None
        models = {m for g, m in self.recent if g > generation} | set(self.pending)
        return None if EVERYTHING in models else models

    def to_doc(self) -> dict[str, Any]:
        return {"format": 1, "epoch": self.epoch, "generation": self.generation,
                "complete_after": self.complete_after, "recent": [list(e) for e in self.recent],
                "pending": list(self.pending), "stamp": self.stamp}  # fmt: skip

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ChangeLog:
        """The record of ``doc``; ValueError when it is not one."""
        try:
            log = cls(str(doc["epoch"]), int(doc["generation"]), int(doc["complete_after"]),
                      tuple((int(g), str(m)) for g, m in doc["recent"]),
                      tuple(str(m) for m in doc["pending"]), int(doc["stamp"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a change record ({e})") from None
        if doc.get("format") != 1:
            raise ValueError("not a change record of format 1")
        return log


def new_log() -> ChangeLog:
    """An empty record with a new epoch."""
    return ChangeLog(secrets.token_hex(8))


def models_stamp(root: Path) -> int:
    """The modification time (ns) of ``models/`` under ``root`` (0 when absent)."""
    try:
        return os.stat(root / "models").st_mtime_ns
    except OSError:
        return 0


def read_log(root: Path) -> ChangeLog | None:
    """The change record of the repository in ``root``; None when absent or damaged."""
    try:
        data = (root / CHANGES_FILE).read_bytes()
        return ChangeLog.from_doc(unseal(data, str(root / CHANGES_FILE)))
    except (OSError, IntegrityError, ValueError):
        return None


def write_log(root: Path, log: ChangeLog, *, exclusive: bool = False, durable: bool = True) -> None:
    """Store ``log`` atomically (``exclusive``: FileExistsError when one exists). Not
    ``durable``: a power loss may leave the old record or a damaged one (then every reader
    reads everything once), never a wrong one; it saves two syncs per write."""
    path = root / CHANGES_FILE
    if durable:
        atomic_write(path, seal(log.to_doc()), exclusive=exclusive)
        return
    replace_unsynced(path, seal(log.to_doc()))


def pending_models(root: Path) -> set[str]:
    """The models a writer named as being changed and has not settled (a live writer's, or a
    killed one's; ``*``: any model). Empty when the record is absent or damaged."""
    log = read_log(root)
    return set() if log is None else set(log.pending)


def start_log(root: Path) -> ChangeLog | None:
    """Make the record of a repository that has none (a reader may: it changes no model, and
    a writer's record always wins); the record now there, None when it cannot be written."""
    try:
        write_log(root, new_log(), exclusive=True)
    except FileExistsError:
        pass
    except OSError:
        return None
    return read_log(root)


class ChangeRecorder:
    """A repository's side of the record: writers call :meth:`touch` before each change (under
    the writer lock) and :meth:`settle` when their session ends."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._touched: set[str] = set()

    def touch(self, model: str | None) -> None:
        """Name ``model`` (None: anything) as being changed, before changing it."""
        name = EVERYTHING if model is None else model
        if name in self._touched:
            return
        log = read_log(self.root) or new_log()
        pending = set(log.pending) | {name}
        if len(pending) > MANY:
            pending = {EVERYTHING}
        try:
            # A new generation here too, so a number a lost (unsynced) settle had is never
            # given to a record that lacks its pending models.
            named = replace(log, generation=log.generation + 1, pending=tuple(sorted(pending)))
            write_log(self.root, named)
        except OSError as e:  # a full or read-only main: the change itself would fail too
            where = f"device {MAIN} ({self.root})"
            raise DeviceError.of(e, where, f"writing {CHANGES_FILE}").then(
                "nothing was changed"
            ) from None
        self._touched.add(name)

    def adopt(self, models: set[str]) -> None:
        """Take models a killed writer left pending (already named in the record) as this
        session's own, so its end settles them: a later writer need not check them again."""
        self._touched |= models

    def settle(self) -> None:
        """End a session that touched models: its pending models (and any a crashed writer
        left) become the next generation. A failure leaves them pending, which is safe."""
        if not self._touched:
            return
        self._touched = set()
        log = read_log(self.root) or new_log()
        generation = log.generation + 1
        # One entry per model, its newest: ``since`` needs no older one, so the KEEP entries
        # name KEEP different models (a model changed in every session filled them alone).
        newest = {m: g for g, m in (*log.recent, *((generation, m) for m in log.pending))}
        recent = tuple(sorted((g, m) for m, g in newest.items()))
        complete_after = log.complete_after
        while len(recent) > KEEP:
            cut = recent[0][0]
            recent = tuple(e for e in recent if e[0] != cut)
            complete_after = cut
        settled = ChangeLog(log.epoch, generation, complete_after, recent, (),
                            models_stamp(self.root))  # fmt: skip
        # On failure the models stay pending: every reader re-reads them until a writer settles.
        # Not synced: losing this write (power loss) leaves them pending, or the record damaged.
        with contextlib.suppress(OSError):
            write_log(self.root, settled, durable=False)
