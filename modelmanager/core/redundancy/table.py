"""Whole-repository chunk lists kept on disk, so memory stays flat however many chunks there are.

A :class:`ChunkTable` is a private temporary SQLite database (deleted when closed) with two
append-only tables, indexed once filled: every (chunk, version) reference the manifests make,
and every piece the readable devices hold. Jobs walk them in chunk-id order, one chunk at a
time (:meth:`ChunkTable.needed`, :meth:`ChunkTable.grouped_pieces`), and ask set questions in
SQL (:meth:`ChunkTable.unused`, :meth:`ChunkTable.missing_count`). Measured (benchmarks/memory.py):
a Python set or dict of every chunk id costs 200 to 600 bytes a chunk, and sorted numpy arrays
of 32-byte ids still ~40; the table costs its page cache (:data:`CACHE_KIB`) and nothing per
chunk. Chunk ids are stored as their 32 raw bytes, so byte order is the hex ids' order.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from modelmanager.core.chunks.layout import Piece
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.placement import Device
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.manifest import Manifest
from modelmanager.errors import UserError

#: SQLite's page cache for one table (KiB): all the memory a table takes, however big.
CACHE_KIB = 4096
_ROWS = 4096  # rows per executemany while filling


@dataclass(frozen=True)
class Needed:
    """One chunk the versions need: its length, the strongest policy of the models using it,
    and the positions (in :attr:`ChunkTable.refs`) of the versions that use it."""

    chunk_id: str
    length: int
    policy: Policy
    users: tuple[int, ...]


@contextmanager
def _faults() -> Iterator[None]:
    """A failing temporary database (its folder full or unwritable) as one line naming it."""
    try:
        yield
    except sqlite3.Error as e:
        raise UserError(
            f"cannot keep the temporary list of chunks ({e}); free some space there or point "
            "TMPDIR at a folder with room",
            path=tempfile.gettempdir(),
        ) from None


class ChunkTable:
    """Needed chunks and stored pieces of a repository, on disk (see the module)."""

    def __init__(self) -> None:
        with _faults():
            # "" is SQLite's private temporary database: on disk past the cache, gone on close.
            self.db = sqlite3.connect("", check_same_thread=False)
            for pragma in (f"cache_size=-{CACHE_KIB}", "journal_mode=OFF", "synchronous=OFF",
                           "temp_store=FILE"):  # fmt: skip
                self.db.execute(f"PRAGMA {pragma}")
            self.db.execute("CREATE TABLE uses (id BLOB, length INT, policy INT, pos INT)")
            self.db.execute("CREATE TABLE pieces (id BLOB, device INT, size INT, key TEXT, "
                            "idx INT, k INT, m INT)")  # fmt: skip
        self.refs: list[str] = []  # one per version (memory per version, not per chunk)
        self.models: list[str] = []
        self.policies: list[Policy] = []
        self.devices: list[Device] = []

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ChunkTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- filling ------------------------------------------------------------------------

    def add_manifests(
        self, manifests: Iterable[Manifest], policy_for: Callable[[str], Policy] | None = None
    ) -> None:
        """Note every chunk of ``manifests`` (read one at a time) under its model's policy."""
        with _faults():
            rows: list[tuple[bytes, int, int, int]] = []
            for m in manifests:
                pos = len(self.refs)
                self.refs.append(m.ref)
                self.models.append(m.model)
                policy = self._policy(policy_for(m.model) if policy_for else Policy())
                for f in m.files:
                    for c in f.chunks:
                        rows.append((bytes.fromhex(c.id), c.length, policy, pos))
                        if len(rows) >= _ROWS:
                            self.db.executemany("INSERT INTO uses VALUES (?, ?, ?, ?)", rows)
                            rows.clear()
            self.db.executemany("INSERT INTO uses VALUES (?, ?, ?, ?)", rows)
            self.db.execute("CREATE INDEX uses_id ON uses (id)")

    def _policy(self, policy: Policy) -> int:
        if policy not in self.policies:
            self.policies.append(policy)
        return self.policies.index(policy)

    def add_pieces(self, chunks: PlacedChunkStore) -> None:
        """Note every piece on every readable device (by presence: nothing is read)."""
        with _faults():
            rows: list[tuple[bytes, int, int, str, int | None, int, int]] = []
            for d in chunks.readable_devices():
                dev = len(self.devices)
                self.devices.append(d)
                for p in chunks.iter_pieces(d):
                    rows.append((bytes.fromhex(p.chunk_id), dev, p.size, p.key, p.index, p.k, p.m))
                    if len(rows) >= _ROWS:
                        self.db.executemany("INSERT INTO pieces VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                        rows.clear()
            self.db.executemany("INSERT INTO pieces VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self.db.execute("CREATE INDEX pieces_id ON pieces (id)")

    # -- walking ------------------------------------------------------------------------

    def needed(self) -> Iterator[Needed]:
        """Every needed chunk once, in id order, under the strongest policy of its users."""
        with _faults():
            rows = self.db.execute("SELECT id, length, policy, pos FROM uses ORDER BY id")
            current: bytes | None = None
            length = 0
            policy = Policy()
            users: list[int] = []
            for cid, n, pol, pos in rows:
                if cid != current:
                    if current is not None:
                        yield Needed(current.hex(), length, policy, tuple(users))
                    current, length, policy, users = cid, n, self.policies[pol], []
                elif self.policies[pol].tolerates > policy.tolerates:
                    policy = self.policies[pol]
                if pos not in users:
                    users.append(pos)
            if current is not None:
                yield Needed(current.hex(), length, policy, tuple(users))

    def totals(self) -> tuple[int, int]:
        """(needed chunks, their bytes)."""
        with _faults():
            row = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(length), 0) FROM "
                "(SELECT MAX(length) AS length FROM uses GROUP BY id)"
            ).fetchone()
            return int(row[0]), int(row[1])

    def _piece(self, row: tuple[bytes, int, int, str, int | None, int, int]) -> Piece:
        cid, dev, size, key, idx, k, m = row
        return Piece(cid.hex(), self.devices[dev], key, size, idx, k, m)

    def pieces_of_needed(self) -> Iterator[tuple[Needed, list[Piece]]]:
        """Each needed chunk (id order) with the pieces the devices hold of it."""
        with _faults():
            pieces = self.db.execute(
                "SELECT id, device, size, key, idx, k, m FROM pieces ORDER BY id, device, rowid"
            )
            ahead = next(pieces, None)
            for need in self.needed():
                raw = bytes.fromhex(need.chunk_id)
                while ahead is not None and ahead[0] < raw:
                    ahead = next(pieces, None)
                found = []
                while ahead is not None and ahead[0] == raw:
                    found.append(self._piece(ahead))
                    ahead = next(pieces, None)
                yield need, found

    def grouped_pieces(self) -> Iterator[list[Piece]]:
        """The pieces the devices hold, one chunk's at a time (id order)."""
        with _faults():
            group: list[Piece] = []
            for row in self.db.execute(
                "SELECT id, device, size, key, idx, k, m FROM pieces ORDER BY id, device, rowid"
            ):
                if group and row[0].hex() != group[0].chunk_id:
                    yield group
                    group = []
                group.append(self._piece(row))
            if group:
                yield group

    def unused(self) -> Iterator[tuple[str, int]]:
        """Stored chunks no version uses (id order), with the bytes all their pieces take."""
        with _faults():
            for cid, size in self.db.execute(
                "SELECT id, SUM(size) FROM pieces WHERE id NOT IN (SELECT id FROM uses) "
                "GROUP BY id ORDER BY id"
            ):
                yield cid.hex(), int(size)

    def missing_count(self) -> tuple[int, int]:
        """(needed chunks no device holds a piece of, needed chunks)."""
        with _faults():
            row = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(id NOT IN (SELECT id FROM pieces)), 0) "
                "FROM (SELECT DISTINCT id FROM uses)"
            ).fetchone()
            return int(row[1]), int(row[0])

    def needed_ids(self) -> Iterator[str]:
        """Every needed chunk id once (id order)."""
        with _faults():
            for (cid,) in self.db.execute("SELECT DISTINCT id FROM uses ORDER BY id"):
                yield cid.hex()

    def stored_ids(self) -> Iterator[str]:
        """Every chunk a device holds a piece of, once (id order)."""
        with _faults():
            for (cid,) in self.db.execute("SELECT DISTINCT id FROM pieces ORDER BY id"):
                yield cid.hex()
