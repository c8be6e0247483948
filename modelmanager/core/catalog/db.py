"""The catalog's SQLite file shared by several processes: opening it, one writer at a time.

Every command opens the catalog, so several processes use one file at once. SQLite (WAL) lets
readers run beside one writer, but only if writers say they write *before* they read: a
deferred transaction that has read (FTS5 reads its config first) and then wants to write gets
"database is locked" at once, without waiting, when another process writes. So every write here
runs in ``BEGIN IMMEDIATE``, which waits (up to :data:`BUSY_TIMEOUT`) for the write lock, and
the schema is made inside such a transaction after checking again that no other process has
made it meanwhile. A busy or locked file is never mistaken for a damaged one.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

from modelmanager.errors import LockedError

#: How long (seconds) a catalog write waits for another process's catalog write. Those are
#: short (rows are prepared before the transaction), so this is only ever reached when a
#: process hangs inside one.
BUSY_TIMEOUT = 60.0

_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_BUSY_TEXT = ("database is locked", "database table is locked", "database schema is locked")
_DAMAGED_TEXT = ("file is not a database", "database disk image is malformed")


def _matches(e: sqlite3.Error, codes: set[int], texts: tuple[str, ...]) -> bool:
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF in codes
    return any(t in str(e) for t in texts)


def is_busy(e: sqlite3.Error) -> bool:
    """True when SQLite gave up waiting for another connection (not a damaged file)."""
    return _matches(e, _BUSY, _BUSY_TEXT)


def is_damaged(e: sqlite3.Error) -> bool:
    """True when the file is not a sound SQLite database (so it may be thrown away)."""
    return _matches(e, _DAMAGED, _DAMAGED_TEXT)


@contextmanager
def busy_is_locked(path: Path) -> Iterator[None]:
    """Turn SQLite's "database is locked" into a one-line LockedError naming the catalog file."""
    try:
        yield
    except sqlite3.OperationalError as e:
        if not is_busy(e):
            raise
        raise LockedError(
            f"the catalog is being written by another process for more than "
            f"{BUSY_TIMEOUT:g} s; try again when it finishes",
            path=path,
        ) from None


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock first (waiting for it), then commits."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def if_free(db: sqlite3.Connection, write: Callable[[sqlite3.Connection], object]) -> bool:
    """Run ``write`` in a write transaction if the catalog can be written at once (False, and
    nothing written, when another process is writing it): for writes that only save work
    later, so a reader never queues behind another process's write."""
    db.execute("PRAGMA busy_timeout=0")
    try:
        with immediate(db):
            write(db)
    except sqlite3.OperationalError as e:
        if not is_busy(e):
            raise
        return False
    else:
        return True
    finally:
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")


def user_version(db: sqlite3.Connection) -> int:
    """The schema version stamped in the file (0 in a new one)."""
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def connect(
    path: Path,
    schema: str,
    version: int,
    keep: tuple[str, ...] = (),
    upgrades: Mapping[int, str] = MappingProxyType({}),
) -> sqlite3.Connection:
    """Open (making the schema of ``version`` when the file lacks it) a shared catalog file.

    Autocommit mode (``isolation_level=None``): transactions are begun only by :func:`immediate`,
    never implicitly, so no read can sit in front of a write in one transaction. Tables named
    in ``keep`` survive a schema change when their definition did not change (data that is in
    no manifest, so no rebuild could bring it back). ``upgrades[n]`` is a statement taking a
    file of version n to n + 1 with its rows: a file those steps bring to ``version`` keeps
    them; any other is made anew.
    """
    db = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        _use_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        if user_version(db) != version:
            with immediate(db):
                # (unless another process made it while we waited)
                if user_version(db) != version and not _upgrade(db, version, upgrades):
                    _make_schema(db, schema, version, keep)
    except BaseException:
        db.close()
        raise
    return db


#: Between two tries at switching a new file to WAL (a little random, so racing processes part).
_WAL_RETRY = (0.005, 0.05)


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL, trying again for up to :data:`BUSY_TIMEOUT` while it is busy.

    On a new file (still in rollback mode) the switch needs the exclusive lock. When two
    processes each hold the shared lock and want it, SQLite answers "database is locked" at
    once instead of calling its busy handler (the wait could deadlock), so several commands
    started together on a new cache failed with a false "written for more than 60 s".
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() >= deadline:
                raise
        else:
            return
        time.sleep(random.uniform(*_WAL_RETRY))


def _made(statement: str) -> str:
    """The name of the table or index a CREATE statement makes."""
    found = re.match(r"CREATE\s+(?:UNIQUE\s+|VIRTUAL\s+)?(?:TABLE|INDEX)\s+(\w+)", statement)
    return found.group(1) if found else ""


def _upgrade(db: sqlite3.Connection, version: int, upgrades: Mapping[int, str]) -> bool:
    """Take the file to ``version`` by the ``upgrades`` steps (inside a transaction), when
    they lead there from its version; False (nothing done) when they do not."""
    found = user_version(db)
    steps = range(found, version)
    if not found or not steps or any(n not in upgrades for n in steps):
        return False
    for n in steps:
        db.execute(upgrades[n])
    db.execute(f"PRAGMA user_version={version}")
    return True


def _make_schema(
    db: sqlite3.Connection, schema: str, version: int, keep: tuple[str, ...] = ()
) -> None:
    """Drop the tables of another schema version (bar unchanged ``keep`` ones) and make ours
    (inside a transaction)."""
    statements = [s.strip() for s in schema.split(";") if s.strip()]
    wanted = {_made(s): " ".join(s.split()) for s in statements}
    for name, sql in db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'search_%'"
    ).fetchall():
        if name in keep and " ".join(str(sql).split()) == wanted.get(name):
            continue
        db.execute(f'DROP TABLE IF EXISTS "{name}"')
    present = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    # One statement at a time: executescript would commit the transaction first.
    for statement in statements:
        if _made(statement) not in present:  # a kept table and its indexes are there
            db.execute(statement)
    db.execute(f"PRAGMA user_version={version}")
