"""Several processes opening one new catalog file at the same instant (real processes, a real
SQLite file): none fails.

Switching a new file to WAL needs its exclusive lock. When two processes each hold the shared
lock and want it, SQLite says "database is locked" at once, without its busy handler (waiting
could deadlock). Commands started together on a new cache failed that way, one open in about
a hundred, with a false "written by another process for more than 60 s" (exit 3).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from modelmanager.core.catalog import _KEEP, _SCHEMA, SCHEMA_VERSION
from modelmanager.core.catalog.db import connect

PROCESSES = 6
ROUNDS = 60


def _open_at_once(path: str, barrier: Any) -> str:
    """Open the catalog at ``path`` when every process is ready; "" or the error it gave."""
    barrier.wait()
    try:
        connect(Path(path), _SCHEMA, SCHEMA_VERSION, _KEEP).close()
    except sqlite3.Error as e:
        return f"{type(e).__name__}: {e}"
    return ""


def test_processes_opening_a_new_catalog_at_the_same_instant_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold Qt
    with ctx.Manager() as manager, ctx.Pool(PROCESSES) as pool:
        barrier = manager.Barrier(PROCESSES)
        errors: list[str] = []
        for r in range(ROUNDS):
            path = str(tmp_path / f"catalog-{r}.sqlite")
            errors += [e for e in pool.starmap(_open_at_once, [(path, barrier)] * PROCESSES) if e]
    assert errors == []
    # Every file ended in WAL with the schema made once.
    db = sqlite3.connect(tmp_path / f"catalog-{ROUNDS - 1}.sqlite")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()
