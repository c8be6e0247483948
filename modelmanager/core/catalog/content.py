"""What each version is made of, by content, as the catalog indexes it (schema 6).

Two tables, filled when a version is catalogued (its manifest is in hand then, so this costs no
extra read): ``tensor_digests`` (a version's distinct tensor digests, with their bytes and
count) and ``version_chunks`` (its distinct chunks, with their plain length and the dtype of
the tensor each lies in). Ids are kept as their first 8 bytes, a signed 64-bit integer: a
tenth of the space of the hex text, and two different digests share a prefix with
probability 2^-64 per pair (about one in 10^5 for a library of 10 million distinct tensors).

They answer, without reading a manifest:

- lineage (``show --related``, the Overview's Related line): which versions share tensors or
  chunks with one, and how many bytes (:func:`shared_with`);
- ``stats``: every total it prints, beside one listing of the pieces on the devices
  (:func:`totals`);
- each model's bytes on disk (:attr:`ModelRow.stored_bytes`): measured by the same listing and
  kept per model in ``model_stored`` until one of the model's versions changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from modelmanager.core.repo.manifest import Manifest

#: The tables (and indexes) of this module, part of the catalog's schema.
SCHEMA = """
CREATE TABLE tensor_digests(vid INTEGER NOT NULL, digest8 INTEGER NOT NULL,
    bytes INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(vid, digest8)) WITHOUT ROWID;
CREATE INDEX tensor_digests_digest ON tensor_digests(digest8);
CREATE TABLE version_chunks(vid INTEGER NOT NULL, chunk8 INTEGER NOT NULL,
    length INTEGER NOT NULL, dtype TEXT NOT NULL, PRIMARY KEY(vid, chunk8)) WITHOUT ROWID;
CREATE INDEX version_chunks_chunk ON version_chunks(chunk8);
CREATE TABLE model_stored(model TEXT PRIMARY KEY, bytes INTEGER NOT NULL,
    measured TEXT NOT NULL);
"""
#: The tables holding rows per version (``vid``: the versions row's rowid).
PER_VERSION = ("tensor_digests", "version_chunks")


def id8(hex_id: str) -> int:
    """The first 8 bytes of a hex digest or chunk id, as a signed 64-bit integer (SQLite's)."""
    return int.from_bytes(bytes.fromhex(hex_id[:16]), "big", signed=True)


def digest_rows(m: Manifest) -> list[tuple[int, int, int]]:
    """(digest8, bytes, count) of each distinct tensor digest of ``m``: what
    core/analysis/lineage.py's ``footprint`` counts (tensors with a digest and some bytes)."""
    out: dict[int, list[int]] = {}
    for _f, t in m.tensors:
        if t.digest and t.nbytes:
            row = out.setdefault(id8(t.digest), [0, 0])
            row[0] += t.nbytes
            row[1] += 1
    return [(d, b, n) for d, (b, n) in out.items()]


def chunk_rows(m: Manifest) -> list[tuple[int, int, str]]:
    """(chunk8, length, dtype) of each distinct chunk of ``m``: the dtype of the tensor the
    chunk lies entirely in, the first time it occurs ("other": headers, groups), as ``stats``
    files it."""
    out: dict[int, tuple[int, str]] = {}
    for f in m.files:
        hints = f.dtype_hints()
        pos = 0
        for c in f.chunks:
            key = id8(c.id)
            if key not in out:
                out[key] = (c.length, hints.of(pos, pos + c.length) or "other")
            pos += c.length
    return [(c, length, dtype) for c, (length, dtype) in out.items()]


def insert(
    db: sqlite3.Connection,
    versions: Iterable[tuple[int, list[tuple[int, int, int]], list[tuple[int, int, str]], str]],
) -> None:
    """Index each version (vid, its :func:`digest_rows`, its :func:`chunk_rows`, its model) in
    one statement per table (a statement per version made a 10,000-model rebuild slow); the
    caller has dropped any rows a stale vid left."""
    digests: list[tuple[int, int, int, int]] = []
    chunks: list[tuple[int, int, int, str]] = []
    models: set[str] = set()
    for vid, digest_list, chunk_list, model in versions:
        digests.extend((vid, *r) for r in digest_list)
        chunks.extend((vid, *r) for r in chunk_list)
        models.add(model)
    db.executemany("INSERT INTO tensor_digests VALUES(?,?,?,?)", digests)
    db.executemany("INSERT INTO version_chunks VALUES(?,?,?,?)", chunks)
    db.executemany("DELETE FROM model_stored WHERE model=?", [(m,) for m in sorted(models)])


def forget_above(db: sqlite3.Connection, top: int) -> None:
    """Drop the index rows of every vid above ``top`` (the highest versions rowid): rows a
    versions row deleted on its own left, in the way of the rowids about to be given out."""
    for table in PER_VERSION:
        db.execute(f"DELETE FROM {table} WHERE vid>?", (top,))


def forget(db: sqlite3.Connection, vids: Iterable[int]) -> None:
    """Drop the index rows of versions rows ``vids``."""
    rows = [(v,) for v in vids]
    for table in PER_VERSION:
        db.executemany(f"DELETE FROM {table} WHERE vid=?", rows)


# -- lineage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    """What another version shares with the shown one: its identity and the shown version's
    bytes (and tensors) it shares, by tensor digest and by chunk."""

    model: str
    seq: int
    parent: int | None
    created: str
    tensors: int
    tensor_bytes: int
    chunk_bytes: int


@dataclass(frozen=True)
class Sharing:
    """A version's content totals and every other version sharing any of it (from the index)."""

    model: str
    seq: int
    parent: int | None
    created: str
    logical_bytes: int
    tensor_bytes: int
    chunk_bytes: int
    others: int  # other versions in the catalog
    shared: tuple[Shared, ...]


#: Every other version sharing a tensor digest or a chunk with version ``:vid``: its identity,
#: and the shown version's tensors, tensor bytes and chunk bytes it shares (index rows left by a
#: versions row deleted by hand join nothing).
_SHARED = """
SELECT v.model, v.seq, v.parent, v.created, SUM(s.n), SUM(s.tb), SUM(s.cb) FROM (
    SELECT o.vid AS vid, m.count AS n, m.bytes AS tb, 0 AS cb FROM tensor_digests m
    JOIN tensor_digests o ON o.digest8=m.digest8 WHERE m.vid=:vid AND o.vid<>:vid
    UNION ALL
    SELECT o.vid, 0, 0, m.length FROM version_chunks m
    JOIN version_chunks o ON o.chunk8=m.chunk8 WHERE m.vid=:vid AND o.vid<>:vid
) s JOIN versions v ON v.rowid=s.vid GROUP BY s.vid ORDER BY s.vid
"""


def shared_with(db: sqlite3.Connection, model: str, seq: int) -> Sharing | None:
    """The versions sharing tensor digests or chunks with ``model@seq`` (None when the catalog
    has no such version): one query over two indexed joins, no manifest read."""
    row = db.execute(
        "SELECT rowid, parent, created, logical_bytes FROM versions WHERE model=? AND seq=?",
        (model, seq),
    ).fetchone()
    if row is None:
        return None
    vid, parent, created, logical = row
    tensor_bytes = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM tensor_digests WHERE vid=?",
                              (vid,)).fetchone()[0]  # fmt: skip
    chunk_bytes = db.execute("SELECT COALESCE(SUM(length), 0) FROM version_chunks WHERE vid=?",
                             (vid,)).fetchone()[0]  # fmt: skip
    shared = tuple(Shared(*row) for row in db.execute(_SHARED, {"vid": vid}))
    others = db.execute("SELECT COUNT(*) FROM versions").fetchone()[0] - 1
    return Sharing(model, seq, parent, created, logical, tensor_bytes, chunk_bytes, others,
                   tuple(shared))  # fmt: skip


# -- sizes -----------------------------------------------------------------------------------


def ratio(part: int, whole: int) -> float:
    """``part / whole`` to four places, 1.0 when ``whole`` is 0: the ratios ``stats`` prints."""
    return round(part / whole, 4) if whole else 1.0


class Sizes(NamedTuple):
    """Logical bytes (as users see them) against the bytes their chunks take on disk."""

    logical: int
    stored: int

    @property
    def ratio(self) -> float:
        return ratio(self.stored, self.logical)

    def to_json(self) -> dict[str, float | int]:
        return {"logical_bytes": self.logical, "stored_bytes": self.stored, "ratio": self.ratio}


@dataclass(frozen=True)
class Totals:
    """``stats``'s figures from the index and one listing of the pieces (or from manifests,
    services/maintenance.py): sizes per model, per version (``model@seq``) and per dtype.

    The breakdowns count each version's (or model's) distinct chunks in full, so a chunk
    shared by two versions counts in both; per dtype, each distinct chunk counts once, under
    the dtype of the tensor it lies in ("other" for headers, small grouped tensors, files).
    """

    models: int
    versions: int
    logical_bytes: int
    unique_bytes: int
    stored_bytes: int
    chunks: int
    by_model: dict[str, Sizes] = field(default_factory=dict)
    by_version: dict[str, Sizes] = field(default_factory=dict)
    by_dtype: dict[str, Sizes] = field(default_factory=dict)


#: What each model's rows were when a measurement began: (key, manifest size) of its versions.
Snapshot = dict[str, frozenset[tuple[str, int]]]


def snapshot(db: sqlite3.Connection) -> Snapshot:
    """The versions of every model as the rows hold them now."""
    out: dict[str, set[tuple[str, int]]] = {}
    for model, key, size in db.execute("SELECT model, key, size FROM versions"):
        out.setdefault(model, set()).add((key, size))
    return {k: frozenset(v) for k, v in out.items()}


def totals(db: sqlite3.Connection, on_disk: Mapping[str, int]) -> Totals:
    """Every ``stats`` figure, from the rows and ``on_disk`` (chunk id -> bytes of all its
    pieces, as the devices list them)."""
    stored: dict[int, int] = {}
    for cid, size in on_disk.items():
        key = id8(cid)
        stored[key] = stored.get(key, 0) + size
    versions: dict[int, tuple[str, str, int]] = {}
    model_logical: dict[str, int] = {}
    for vid, model, seq, logical in db.execute(
        "SELECT rowid, model, seq, logical_bytes FROM versions ORDER BY model, seq"
    ):
        versions[vid] = (model, f"{model}@{seq}", logical)
        model_logical[model] = model_logical.get(model, 0) + logical
    unique: dict[int, tuple[int, str]] = {}
    model_chunks: dict[str, set[int]] = {m: set() for m in model_logical}
    version_stored: dict[int, int] = dict.fromkeys(versions, 0)
    for vid, chunk, length, dtype in db.execute(
        "SELECT vid, chunk8, length, dtype FROM version_chunks ORDER BY vid"
    ):
        if vid not in versions:
            continue
        unique.setdefault(chunk, (length, dtype))
        model_chunks[versions[vid][0]].add(chunk)
        version_stored[vid] += stored.get(chunk, 0)
    by_dtype: dict[str, Sizes] = {}
    for chunk, (length, dtype) in unique.items():
        lo, st = by_dtype.get(dtype, (0, 0))
        by_dtype[dtype] = Sizes(lo + length, st + stored.get(chunk, 0))
    return Totals(
        len(model_logical), len(versions), sum(model_logical.values()),
        sum(length for length, _d in unique.values()), sum(on_disk.values()), len(on_disk),
        {m: Sizes(model_logical[m], sum(stored.get(c, 0) for c in ids))
         for m, ids in model_chunks.items()},
        {ref: Sizes(logical, version_stored[vid]) for vid, (_m, ref, logical) in versions.items()},
        by_dtype,
    )  # fmt: skip


def keep_stored(db: sqlite3.Connection, t: Totals, before: Snapshot, at: str) -> int:
    """Keep each model's stored bytes from ``t`` (inside a write transaction), for the models
    whose versions are still those of ``before`` (taken before the pieces were listed: a
    version added since may have chunks the listing missed). How many were kept."""
    now = snapshot(db)
    kept = [(m, stored, at) for m, (_logical, stored) in t.by_model.items()
            if m in before and now.get(m) == before[m]]  # fmt: skip
    db.execute("DELETE FROM model_stored")
    db.executemany("INSERT INTO model_stored VALUES(?,?,?)", kept)
    return len(kept)
