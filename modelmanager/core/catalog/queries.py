"""Reading the catalog's rows: every model, a model's versions, and search.

A mixin of :class:`modelmanager.core.catalog.Catalog` (its connection and lock), kept apart
from keeping the rows in line with the repository (``__init__.py``) and from what versions
are made of (content.py); each query takes the catalog's lock only while it reads.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from typing import Any

from modelmanager.core.catalog.facts import facts_from_json
from modelmanager.core.catalog.filters import ORDER, SearchFilter, where
from modelmanager.core.catalog.rows import ModelRow, VersionRow
from modelmanager.core.gcpause import paused_gc

#: JSON the catalog wrote itself (no whitespace around it), parsed without ``json.loads``'s
#: two whitespace scans: 0.8 against 2.2 us a value, two values a row of 10,000 in a search.
_parse = json.JSONDecoder().raw_decode


def fts_query(text: str) -> str:
    """The full-text query for ``text``: every word, as a prefix, must match."""
    words = re.findall(r"\w+", text)
    return " AND ".join(f'"{w}"*' for w in words)


class Queries:
    """The catalog's read queries, over the connection and lock a :class:`Catalog` opens."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    def _labels_by_version(self, model: str | None = None) -> dict[tuple[str, int], list[str]]:
        sql = "SELECT model, label, seq FROM labels"
        rows = self._db.execute(
            sql + (" WHERE model=?" if model else ""), (model,) if model else ()
        )
        out: dict[tuple[str, int], list[str]] = {}
        for m, label, seq in rows:
            out.setdefault((m, seq), []).append(label)
        return out

    def _version_row(self, row: tuple[Any, ...], labels: list[str]) -> VersionRow:
        (model, seq, parent, created, message, metadata, files, tensors, params, size, dtypes,
         facts) = row  # fmt: skip
        return VersionRow(
            model, seq, parent, created, message, metadata, files, tensors, params,
            size, _parse(dtypes)[0], tuple(sorted(labels)), facts_from_json(facts),
        )  # fmt: skip

    _VERSION_COLS = (
        "v.model, v.seq, v.parent, v.created, v.message, v.metadata, v.files, v.tensors, "
        "v.parameters, v.logical_bytes, v.dtypes, v.facts"
    )

    def models(self) -> list[ModelRow]:
        """Every model, sorted by name, with its newest version's figures."""
        with self._lock, paused_gc():  # 10,000 rows of acyclic tuples, dicts and records
            labels: dict[str, dict[str, int]] = {}
            for model, label, seq in self._db.execute("SELECT model, label, seq FROM labels"):
                labels.setdefault(model, {})[label] = seq
            # One pass over the index that holds every column asked (versions_newest, in
            # model order): with one MAX(), SQLite gives the other bare columns from the row
            # holding the largest seq. Joining versions to a per-model MAX took 33 ms at
            # 10,000 models x 5 versions, this 24.
            rows = self._db.execute(
                "SELECT v.model, COUNT(*), MAX(v.seq), v.created, v.logical_bytes, "
                "v.parameters, v.architecture, v.dtypes, s.bytes "
                "FROM versions v INDEXED BY versions_newest "
                "LEFT JOIN model_stored s ON s.model=v.model GROUP BY v.model ORDER BY v.model"
            ).fetchall()
            return [
                ModelRow(name, n, seq, created, size, params, labels.get(name, {}),
                         arch, dtypes, stored)
                for name, n, seq, created, size, params, arch, dtypes, stored in rows
            ]  # fmt: skip

    def versions(self, model: str) -> list[VersionRow]:
        """The versions of ``model``, newest first."""
        with self._lock:
            labels = self._labels_by_version(model)
            rows = self._db.execute(
                f"SELECT {self._VERSION_COLS} FROM versions v WHERE model=? ORDER BY seq DESC",
                (model,),
            ).fetchall()
        return [self._version_row(r, labels.get((model, r[1]), [])) for r in rows]

    def all_versions(self) -> dict[str, list[VersionRow]]:
        """Every model's versions, newest first, in one query (the library tree of 10,000
        models asked ``versions`` 10,000 times: 0.8 s)."""
        with self._lock, paused_gc():  # 50,000 rows of acyclic tuples, dicts and records
            labels = self._labels_by_version()
            rows = self._db.execute(
                f"SELECT {self._VERSION_COLS} FROM versions v ORDER BY model, seq DESC"
            ).fetchall()
            out: dict[str, list[VersionRow]] = {}
            for r in rows:
                row = self._version_row(r, labels.get((r[0], r[1]), []))
                out.setdefault(r[0], []).append(row)
        return out

    def search(self, text: str, filters: SearchFilter | None = None) -> list[VersionRow]:
        """Versions whose model name, message, metadata or labels match every word of ``text``
        (any version when ``text`` is blank and a filter is set) and that ``filters`` keep,
        in the filter's order (by name when none)."""
        filters = filters or SearchFilter()
        query = fts_query(text)
        if not query and not filters.active:
            return []
        words = [w.lower() for w in re.findall(r"\w+", text)]
        cond, args = where(filters)
        with self._lock, paused_gc():  # 10,000 rows of acyclic tuples, dicts and records
            if query:
                # The matches are picked inside the one query that reads them: by rowid (the
                # full-text table's rows are the versions'), or as versions whose labels hold
                # every word, asked only when every word is in some label (one quick look
                # each). Collecting their keys and every label in Python first, and passing
                # the keys back as JSON, was half of a broad search (10,000 rows).
                found = "v.rowid IN (SELECT rowid FROM search WHERE search MATCH ?)"
                args = [*args, query]
                if all(self._db.execute("SELECT 1 FROM labels WHERE instr(label, ?) LIMIT 1",
                                        (w,)).fetchone() for w in words):  # fmt: skip
                    having = " AND ".join("max(instr(label, ?))" for _w in words)
                    found += (" OR (v.model, v.seq) IN (SELECT model, seq FROM labels "
                              f"GROUP BY model, seq HAVING {having})")  # fmt: skip
                    args += words
                cond += f" AND ({found})"
            rows = self._db.execute(
                f"SELECT {self._VERSION_COLS}, (SELECT group_concat(label, ' ') FROM labels l "
                f"WHERE l.model=v.model AND l.seq=v.seq) FROM versions v WHERE {cond} "
                f"ORDER BY {ORDER[filters.sort]}", args
            ).fetchall()  # fmt: skip
            return [self._version_row(r[:-1], r[-1].split() if r[-1] else []) for r in rows]
