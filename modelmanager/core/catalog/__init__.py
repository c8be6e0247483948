"""The catalog: a SQLite (WAL) cache of manifests and labels for fast listing and search.

It is never the only copy of anything. It lives in the user's cache folder (SQLite in WAL mode
must not sit on a network file system, where a repository may), is brought up to date with the
manifests whenever it is opened, and is rebuilt from scratch by ``reindex`` or when damaged.
Catching up costs O(changes): the catalog remembers how far it has read the repository's change
record (core/repo/changes.py) and re-reads only the models named after that.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from modelmanager.core.catalog import content, position
from modelmanager.core.catalog.bench import BENCH_KINDS as BENCH_KINDS
from modelmanager.core.catalog.bench import BenchRow as BenchRow
from modelmanager.core.catalog.bench import best_strategy as best_strategy
from modelmanager.core.catalog.bench import device_speeds as device_speeds
from modelmanager.core.catalog.content import Sharing as Sharing
from modelmanager.core.catalog.content import Totals as Totals
from modelmanager.core.catalog.db import busy_is_locked, connect, if_free, immediate, is_damaged
from modelmanager.core.catalog.prepared import Prepared, prepare
from modelmanager.core.catalog.queries import Queries
from modelmanager.core.catalog.reader import read_rows
from modelmanager.core.catalog.rows import ModelRow as ModelRow
from modelmanager.core.catalog.rows import SyncResult as SyncResult
from modelmanager.core.catalog.rows import VersionRow as VersionRow
from modelmanager.core.gcpause import paused_gc
from modelmanager.core.ids import content_id
from modelmanager.core.repo.changes import (
    EVERYTHING,
    ChangeLog,
    models_stamp,
    read_log,
    start_log,
)
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.names import model_key
from modelmanager.core.repo.repository import Repository
from modelmanager.errors import ModelManagerError

#: 3: the search table is keyed by the versions row's rowid (2 had an UNINDEXED key column,
#: so every delete scanned the whole table and a rebuild took quadratic time).
#: 4: the sync position (``state``) and the case-insensitive name index.
#: 5: each version's structured facts (core/catalog/facts.py), as columns search filters on.
#: 6: license and base model columns (filters); each version's tensor digests and chunks
#: (core/catalog/content.py: lineage and stats without a manifest read); models' stored bytes.
#: 7: an index holding what ``models()`` reads (ls and the library), added to a version 6 file
#: in place (:data:`_UPGRADES`), not by a rebuild.
SCHEMA_VERSION = 7
#: Every column ``models()`` reads, in model and version order: one pass over it lists them.
_NEWEST_INDEX = (
    "CREATE INDEX versions_newest ON versions(model, seq, created, logical_bytes, parameters, "
    "architecture, dtypes)"
)
_SCHEMA = """
CREATE TABLE versions(
    key TEXT PRIMARY KEY, model TEXT NOT NULL, seq INTEGER NOT NULL, parent INTEGER,
    created TEXT NOT NULL, message TEXT NOT NULL, metadata TEXT NOT NULL,
    files INTEGER NOT NULL, tensors INTEGER NOT NULL, parameters INTEGER NOT NULL,
    logical_bytes INTEGER NOT NULL, dtypes TEXT NOT NULL, size INTEGER NOT NULL,
    facts TEXT NOT NULL, architecture TEXT NOT NULL, model_type TEXT NOT NULL,
    dtype_names TEXT NOT NULL, formats TEXT NOT NULL, license TEXT NOT NULL,
    base_model TEXT NOT NULL);
CREATE UNIQUE INDEX versions_model ON versions(model, seq);
CREATE INDEX versions_folded ON versions(lower(model));
CREATE TABLE state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE labels(model TEXT NOT NULL, label TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY(model, label));
CREATE VIRTUAL TABLE search USING fts5(name, message, metadata);
CREATE TABLE bench(run TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    device TEXT NOT NULL, device_id TEXT NOT NULL, ref TEXT NOT NULL, strategy TEXT NOT NULL,
    threads INTEGER NOT NULL, cache TEXT NOT NULL, bytes INTEGER NOT NULL,
    seconds REAL NOT NULL);
CREATE INDEX bench_run ON bench(run);
"""
_SCHEMA += content.SCHEMA + _NEWEST_INDEX + ";\n"
#: Tables kept across a schema change (when unchanged): benchmark history is in no manifest.
_KEEP = ("bench",)
#: What takes a file of the version key to the next one while keeping its rows (an index
#: more needs no rebuild of 50,000 versions; one made by hand already is kept).
_UPGRADES = {6: _NEWEST_INDEX.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)}
#: The columns of ``versions``, in order (inserts name them: the rowid is given explicitly).
_VERSION_COLUMNS = (
    "key, model, seq, parent, created, message, metadata, files, tensors, parameters, "
    "logical_bytes, dtypes, size, facts, architecture, model_type, dtype_names, formats, "
    "license, base_model"
)
#: Versions written per statement by a sync or rebuild (bounds the rows held at once).
INSERT_BATCH = 2000
#: A sync or rebuild reports (versions read, versions to read) at most this often.
PROGRESS_EVERY = 100

#: Each model's label record keys, from one listing (``Repository.listing``).
Listed = Mapping[str, list[str]]
#: ``progress(done, total)``: how far a sync or rebuild has read the manifests it needs.
Progress = Callable[[int, int], None]


def catalog_path(cache_dir: Path, repo: Repository) -> Path:
    """Where the catalog of ``repo`` lives: per repository id and folder, in the cache."""
    where = content_id(str(repo.root).encode())[:12]
    return cache_dir / "catalogs" / f"{repo.config.id}-{where}.sqlite"


def _model_names(manifest_keys: Iterable[str]) -> list[str]:
    """The models the manifest keys ``models/<org~name>/versions/<n>.json`` belong to, sorted:
    what ``Repository.model_names`` says, without listing the folders once more."""
    return sorted({key.split("/")[1].replace("~", "/") for key in manifest_keys})


class Catalog(Queries):
    """The catalog of one repository. Safe to share between threads, and between processes
    (see :mod:`modelmanager.core.catalog.db`): reads never block, writes take turns."""

    def __init__(self, path: Path, repo: Repository) -> None:
        self.path = path
        self.repo = repo
        self._lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with busy_is_locked(path):
            try:
                self._db = connect(path, _SCHEMA, SCHEMA_VERSION, _KEEP, _UPGRADES)
            except sqlite3.DatabaseError as e:
                if not is_damaged(e):
                    raise  # busy is not damage: never throw away a file another process uses
                # A damaged cache is thrown away and rebuilt: the manifests are the truth.
                self._discard_files()
                self._db = connect(path, _SCHEMA, SCHEMA_VERSION, _KEEP, _UPGRADES)
        repo.model_index = self

    @classmethod
    def open(cls, cache_dir: Path, repo: Repository) -> Catalog:
        """Open (creating or repairing as needed) and sync the catalog of ``repo``."""
        catalog = cls(catalog_path(cache_dir, repo), repo)
        try:
            catalog.sync()
        except BaseException:
            catalog.close()
            raise
        return catalog

    def _discard_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        if self.repo.model_index is self:
            self.repo.model_index = None
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: this thread's turn, then this process's (waiting for others)."""
        with self._lock, busy_is_locked(self.path), immediate(self._db) as db:
            yield db

    # -- keeping up with the repository -----------------------------------------------

    @staticmethod
    def _delete(db: sqlite3.Connection, keys: list[str]) -> None:
        """Forget the versions ``keys`` name: each an indexed lookup (search rows share the
        rowid of their versions row)."""
        rows = [(k,) for k in keys]
        db.executemany(
            "DELETE FROM search WHERE rowid=(SELECT rowid FROM versions WHERE key=?)", rows
        )
        db.executemany(
            "DELETE FROM model_stored WHERE model=(SELECT model FROM versions WHERE key=?)", rows
        )
        for table in content.PER_VERSION:
            db.executemany(
                f"DELETE FROM {table} WHERE vid=(SELECT rowid FROM versions WHERE key=?)", rows
            )
        db.executemany("DELETE FROM versions WHERE key=?", rows)

    def _insert(self, db: sqlite3.Connection, versions: list[Prepared]) -> None:
        """Record versions (their rows made by :func:`prepare`), replacing rows of the same
        keys: one statement per table for each :data:`INSERT_BATCH` versions (a statement per
        version and table made a 10,000-model rebuild take 17 s)."""
        for start in range(0, len(versions), INSERT_BATCH):
            self._insert_batch(db, versions[start : start + INSERT_BATCH])

    def _insert_batch(self, db: sqlite3.Connection, versions: list[Prepared]) -> None:
        self._delete(db, [p[0] for p in versions])
        (top,) = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM versions").fetchone()
        # Search and index rows left by a versions row deleted on its own (by hand, say) may
        # hold the rowids given out next: they are stale, and in the way.
        db.execute("DELETE FROM search WHERE rowid>?", (top,))
        content.forget_above(db, top)
        numbered = list(enumerate(versions, top + 1))
        db.executemany(
            f"INSERT INTO versions(rowid, {_VERSION_COLUMNS}) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(vid, *p[3]) for vid, p in numbered],
        )  # fmt: skip
        db.executemany("INSERT INTO search(rowid, name, message, metadata) VALUES(?,?,?,?)",
                       [(vid, *p[4]) for vid, p in numbered])  # fmt: skip
        content.insert(db, [(vid, p[5], p[6], p[2]) for vid, p in numbered])

    def add_version(self, key: str, manifest: Manifest, size: int) -> None:
        """Record a version just committed (the writer calls this last)."""
        with self._tx() as db:
            self._insert(db, [prepare(key, manifest, size)])
            self._sync_labels(db, [manifest.model])

    def remove_version(self, key: str, model: str) -> None:
        """Forget a version just removed (the writer calls this after deleting its manifest)."""
        with self._tx() as db:
            self._delete(db, [key])
            self._sync_labels(db, [model])

    def _sync_labels(
        self, db: sqlite3.Connection, models: list[str], listed: Listed | None = None
    ) -> None:
        """Re-read the labels of ``models`` (their record keys from ``listed`` when given,
        else listed per model): one statement per table for all of them."""
        rows = [(model, label, seq) for model in models
                for label, seq in self._labels_of(model, listed).items()]  # fmt: skip
        db.executemany("DELETE FROM labels WHERE model=?", [(model,) for model in models])
        db.executemany("INSERT INTO labels VALUES(?,?,?)", rows)

    def refresh_labels(self, model: str) -> None:
        """Re-read the labels of one model (after a label moved)."""
        with self._tx() as db:
            self._sync_labels(db, [model])

    def _stored(self) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """What the catalog holds now: manifest sizes by key, labels by model."""
        with self._lock:
            sizes = {k: s for k, s in self._db.execute("SELECT key, size FROM versions")}
            labels: dict[str, dict[str, int]] = {}
            for model, label, seq in self._db.execute("SELECT model, label, seq FROM labels"):
                labels.setdefault(model, {})[label] = seq
        return sizes, labels

    def _labels_of(self, model: str, listed: Listed | None) -> dict[str, int]:
        return self.repo.read_labels(model, None if listed is None else listed.get(model, []))

    def _on_disk_labels(self, listed: Listed) -> dict[str, dict[str, int]]:
        found = {model: self.repo.read_labels(model, keys) for model, keys in listed.items()}
        return {model: labels for model, labels in found.items() if labels}

    def sync(self, progress: Progress | None = None) -> SyncResult:
        """Bring the catalog in line with the manifests and labels on disk.

        When the repository's change record names what changed since the catalog last read
        it, only those models are read again; when nothing changed, nothing but that record
        is read (every command syncs on opening). Otherwise (no record, another epoch, too far
        behind, the devices or ``models/`` changed outside a writer) everything is compared.
        ``progress`` hears (read, to read) every :data:`PROGRESS_EVERY` manifests and at the end
        of a sync that compares everything (one of a few models is too short to report).
        """
        root = self.repo.root
        log = read_log(root) or (None if self.repo.legacy else start_log(root))
        layout = position.layout_of(self.repo)
        with self._lock:
            pos = position.load(self._db)
        models = None if log is None else position.to_read(pos, log, layout, root)
        if models is None:
            # Every manifest read and every row made is acyclic: the collector walking them
            # all again and again cost a fifth of a 10,000-model rebuild (cold ls 9.5-10.0 s
            # with it paused, 11.7-11.9 s without, in turn on one machine).
            with paused_gc():
                return self._sync_all(log, layout, progress)
        if not models:
            return SyncResult(0, 0)
        assert log is not None
        return self._sync_models(sorted(models), log, layout)

    def _model_state(self, model: str) -> tuple[dict[str, int], dict[str, int]]:
        """(manifest sizes by key, labels) of ``model`` on disk (none for a name no model may
        have)."""
        try:
            return dict(self.repo.model_manifest_keys(model)), self.repo.read_labels(model)
        except ModelManagerError:
            return {}, {}

    def _listed_again(
        self, listed: dict[str, int], labels: Listed, log: ChangeLog | None, stamp: int
    ) -> tuple[dict[str, int], Listed]:
        """The manifests (and label record keys) on disk now, inside the write transaction,
        given ``listed`` and ``labels``, made after ``log`` was read and ``models/`` had time
        ``stamp``. A writer names a model in the record before changing it: when the record
        and ``models/`` are as they were, only the models then pending may have changed, and
        only they are listed again (a second listing of 10,000 models took 1.3 s); otherwise
        everything is."""
        root = self.repo.root
        if (
            log is None
            or EVERYTHING in log.pending
            or read_log(root) != log
            or models_stamp(root) != stamp
        ):
            versions, label_keys = self.repo.listing()
            return dict(versions), label_keys
        pending: set[str] = set()
        for model in log.pending:
            with contextlib.suppress(ModelManagerError):  # no model has such a name
                pending.add(model_key(model))
        out = {k: s for k, s in listed.items() if k.rsplit("/", 2)[0] not in pending}
        out_labels = {m: keys for m, keys in labels.items() if m not in log.pending}
        for model in log.pending:
            with contextlib.suppress(ModelManagerError):
                out.update(self.repo.model_manifest_keys(model))
                out_labels[model] = self.repo.label_keys(model)
        return out, out_labels

    def _rows_of(self, db: sqlite3.Connection, model: str) -> tuple[dict[str, int], dict[str, int]]:
        """(manifest sizes by key, labels) of ``model`` as the rows hold them."""
        sizes = dict(db.execute("SELECT key, size FROM versions WHERE model=?", (model,)))
        labels = dict(db.execute("SELECT label, seq FROM labels WHERE model=?", (model,)))
        return sizes, labels

    def _sync_models(self, models: list[str], log: ChangeLog, layout: str) -> SyncResult:
        """Read again the versions and labels of ``models`` only.

        Compared first without writing (a catalog already in line is only read, and only
        remembers the new position when no other process is writing it); then, inside one
        transaction, listed again, so no older state is written over a newer one."""
        fresh: dict[tuple[str, int], Manifest] = {}
        differ = False
        for model in models:
            on_disk, labels = self._model_state(model)
            with self._lock:
                known, known_labels = self._rows_of(self._db, model)
            differ = differ or on_disk != known or labels != known_labels
            for key, size in on_disk.items():
                if known.get(key) != size:
                    with contextlib.suppress(ModelManagerError):  # verify reports it
                        fresh[key, size] = self.repo.read_manifest_key(key)
        if not differ:
            with self._lock:
                position.store_if_free(self._db, log, layout, None)
            return SyncResult(0, 0)
        added = removed = 0
        with self._tx() as db:
            for model in models:
                on_disk, _labels = self._model_state(model)
                known, _known_labels = self._rows_of(db, model)
                gone = [k for k in known if k not in on_disk]
                self._delete(db, gone)
                removed += len(gone)
                todo: list[Prepared] = []
                for key, size in on_disk.items():
                    if known.get(key) == size:
                        continue
                    with contextlib.suppress(ModelManagerError):  # verify reports it
                        manifest = fresh.get((key, size)) or self.repo.read_manifest_key(key)
                        todo.append(prepare(key, manifest, size))
                self._insert(db, todo)
                added += len(todo)
                self._sync_labels(db, [model])
            position.store(db, log, layout, None)
        return SyncResult(added, removed)

    def _sync_all(
        self, log: ChangeLog | None, layout: str, progress: Progress | None
    ) -> SyncResult:
        """Compare every manifest and label on disk with the rows.

        New manifests are read before the transaction; inside it the folders are listed again,
        so a version another process removed (or labels it moved) meanwhile is never written
        back over its newer catalog entry. ``log`` (read before anything else) is the position
        the rows then reflect at least.
        """
        stamp = models_stamp(self.repo.root)
        versions, found = self.repo.listing()
        on_disk = dict(versions)
        labels: Listed = found
        known, known_labels = self._stored()
        todo = [(k, s) for k, s in on_disk.items() if known.get(k) != s]
        # verify reports damaged manifests; listing shows the rest
        fresh = read_rows(self.repo, todo, progress, PROGRESS_EVERY)
        stale = [k for k in known if k not in on_disk]
        if not fresh and not stale and self._on_disk_labels(labels) == known_labels:
            with self._lock:
                if log is not None or position.load(self._db) is not None:
                    position.store_if_free(self._db, log, layout, stamp)
            return SyncResult(0, 0)
        with self._tx() as db:
            on_disk, labels = self._listed_again(on_disk, labels, log, stamp)
            known = {k: s for k, s in db.execute("SELECT key, size FROM versions")}
            gone = [k for k in known if k not in on_disk]
            self._delete(db, gone)
            new = [p for key, p in fresh.items()
                   if on_disk.get(key) == p[1] and known.get(key) != p[1]]  # fmt: skip
            self._insert(db, new)
            db.execute("DELETE FROM labels")
            self._sync_labels(db, _model_names(on_disk), labels)
            position.store(db, log, layout, stamp)
        return SyncResult(len(new), len(gone))

    def rebuild(self, progress: Progress | None = None) -> SyncResult:
        """Forget every version and label and read them all again from the manifests
        (``progress`` as for :meth:`sync`).

        The rows are emptied in a transaction, not the file deleted: another process may
        have it open. Benchmark history is not in any manifest: it is kept across a rebuild
        (but not across a damaged file, which is thrown away).
        """
        try:
            with self._tx() as db:
                for table in ("versions", "labels", "search", "state", "model_stored",
                              *content.PER_VERSION):  # fmt: skip
                    db.execute(f"DELETE FROM {table}")
        except sqlite3.DatabaseError:  # tables broken (busy was raised as LockedError)
            try:
                bench = self.bench_rows()
            except sqlite3.DatabaseError:
                bench = []
            with self._lock:
                self._db.close()
                self._discard_files()
                self._db = connect(self.path, _SCHEMA, SCHEMA_VERSION, _KEEP, _UPGRADES)
            self.add_bench(bench)
        return self.sync(progress)

    def existing_model_name(self, model: str) -> str | None:
        """The stored spelling of a model whose name equals ``model`` ignoring case (names are
        ASCII): caught up with the repository first, then one indexed lookup."""
        self.sync()
        with self._lock:
            row = self._db.execute(
                "SELECT model FROM versions WHERE lower(model)=? LIMIT 1", (model.lower(),)
            ).fetchone()
        return str(row[0]) if row else None

    def model_names(self) -> list[str]:
        """Every model's name, sorted, as of the last sync (the versions table's index)."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT model FROM versions ORDER BY model")
            return [str(r[0]) for r in rows]

    # -- benchmark history --------------------------------------------------------------

    def add_bench(self, rows: list[BenchRow]) -> None:
        """Store the measurements of a benchmark run."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO bench VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                [(r.run, r.at, r.kind, r.device, r.device_id, r.ref, r.strategy, r.threads,
                  r.cache, r.bytes, r.seconds) for r in rows],
            )  # fmt: skip

    def bench_rows(self, run: str | None = None) -> list[BenchRow]:
        """Every stored measurement (of one run), oldest first."""
        sql = "SELECT * FROM bench" + (" WHERE run=?" if run else "") + " ORDER BY at, rowid"
        with self._lock:
            rows = self._db.execute(sql, (run,) if run else ()).fetchall()
        return [BenchRow(*r) for r in rows]

    def best_strategy(self) -> str | None:
        """See :func:`best_strategy` (over every stored row)."""
        return best_strategy(self.bench_rows())

    def device_speeds(self) -> dict[str, float]:
        """See :func:`device_speeds` (over every stored row)."""
        return device_speeds(self.bench_rows())

    # -- content: lineage and sizes without a manifest read (core/catalog/content.py) -----

    def sharing(self, model: str, seq: int) -> Sharing | None:
        """The versions sharing tensor digests or chunks with ``model@seq``, from the index
        (None when the catalog has no such version). Reads no manifest."""
        with self._lock:
            return content.shared_with(self._db, model, seq)

    def measure_stored(self) -> Totals:
        """List the pieces on the devices once and return every ``stats`` total (no manifest
        read); keep each model's stored bytes (:attr:`ModelRow.stored_bytes`) for models whose
        versions did not change meanwhile. The library's background job and ``stats`` call it.

        Keeping them needs the write lock at once; when another process holds it, the figures
        are returned but not kept (the next measurement keeps them).
        """
        self.sync()  # warm: only the change record is read
        with self._lock:
            before = content.snapshot(self._db)
        on_disk = dict(self.repo.chunks.iter_stored())
        with self._lock:
            totals = content.totals(self._db, on_disk)
            at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if_free(self._db, lambda db: content.keep_stored(db, totals, before, at))
        return totals

    def stored_bytes(self) -> dict[str, int]:
        """Each model's kept stored bytes (models not measured since they changed are absent):
        what a view showing :attr:`ModelRow.stored_bytes` re-reads after a measurement."""
        with self._lock:
            return dict(self._db.execute("SELECT model, bytes FROM model_stored"))

    def forget_stored(self) -> None:
        """Forget every kept stored size: call after a job that changes the pieces of chunks
        still in use (recompress, a redundancy change, a device removed or rebalanced)."""
        with self._tx() as db:
            db.execute("DELETE FROM model_stored")
