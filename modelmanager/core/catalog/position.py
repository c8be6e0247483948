"""How far a catalog has read its repository's change record (core/repo/changes.py).

Stored in the catalog's ``state`` table. A position is only ever behind the rows (read before
what they reflect), so catching up from it may read a model twice, never miss one.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from modelmanager.core.catalog.db import if_free
from modelmanager.core.repo.changes import ChangeLog, models_stamp
from modelmanager.core.repo.repository import Repository

#: The ``state`` row holding the position.
KEY = "position"


@dataclass(frozen=True)
class Position:
    """The record's epoch and generation the rows reflect (at least), the copies the records
    were listed from, and the time of ``models/`` the last full comparison saw."""

    epoch: str
    generation: int
    layout: str
    stamp: int


def layout_of(repo: Repository) -> str:
    """Which copies the records are listed from: another set means other listings."""
    return "|".join(f"{c.name}={c.where}" for c in repo.replicated.copies)


def load(db: sqlite3.Connection) -> Position | None:
    """The stored position (None: none, or not one this version wrote)."""
    row = db.execute("SELECT value FROM state WHERE key=?", (KEY,)).fetchone()
    try:
        return Position(**json.loads(row[0])) if row else None
    except (ValueError, TypeError):
        return None


def to_read(pos: Position | None, log: ChangeLog, layout: str, root: Path) -> set[str] | None:
    """The models to read again to catch up with ``log``; None when everything must be."""
    if pos is None or pos.epoch != log.epoch or pos.layout != layout:
        return None
    models = log.since(pos.generation)
    # No writer at work: models/ must be as the last writer (or full sync) left it, else a
    # model folder was added or removed by hand, or by an older ModelManager.
    outside = models_stamp(root) not in (log.stamp, pos.stamp)
    return None if models is not None and not log.pending and outside else models


def store(db: sqlite3.Connection, log: ChangeLog | None, layout: str, stamp: int | None) -> None:
    """Store the position of ``log`` (inside a write transaction); never move it back.
    ``stamp``: the ``models/`` time a full comparison saw (None: keep the one stored)."""
    if log is None:
        db.execute("DELETE FROM state WHERE key=?", (KEY,))
        return
    pos = load(db)
    same = pos is not None and (pos.epoch, pos.layout) == (log.epoch, layout)
    if same and pos is not None and pos.generation > log.generation:
        return  # another process caught up further meanwhile
    if stamp is None:
        stamp = pos.stamp if pos is not None else 0
    value = json.dumps(asdict(Position(log.epoch, log.generation, layout, stamp)))
    db.execute("INSERT OR REPLACE INTO state VALUES(?,?)", (KEY, value))


def store_if_free(
    db: sqlite3.Connection, log: ChangeLog | None, layout: str, stamp: int | None
) -> None:
    """:func:`store`, if the catalog can be written at once: a catalog in line is only read,
    so a reader never queues behind another process's write (it catches up from an older
    position next time, which is only slower)."""
    if_free(db, lambda free: store(free, log, layout, stamp))
