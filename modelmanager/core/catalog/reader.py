"""A full sync's manifests read and made into rows by two processes at once (issue 18).

A catalog lost at 10,000 models x 5 versions costs one Python pass over 50,000 manifests (read,
check, parse, facts, rows): about two thirds of the rebuild, all of it holding the GIL. So when
there are many to read and a second core, a child process (isolated: core/children.py) takes
every other manifest and sends back their rows in batches (``marshal``: plain values only), while
this process reads the rest. The child only saves time: every manifest it does not answer for
(it could not start, died, or sent something malformed) is read here, so the rows are the same
either way.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from modelmanager.core.catalog.prepared import Prepared, prepare, well_formed
from modelmanager.core.children import (
    CATALOG_FLAG,
    NEUTRAL_FOLDER,
    child_environment,
    python_child,
    usable_cores,
)
from modelmanager.core.repo.repository import Repository
from modelmanager.core.storage.local import LocalBlobStore
from modelmanager.errors import ModelManagerError

#: Below this many manifests to read, one process reads them all (starting the child and
#: importing the engine there costs about 0.2 s).
PARALLEL_FROM = 2000
#: Manifests per batch the child sends: the parent's progress moves, and it sees soon where
#: the child has got to.
BATCH = 100
_CHILD_CODE = (
    "import sys; from modelmanager.core.catalog.reader import child_main; "
    "sys.exit(child_main(sys.argv[1:]))"
)
_END = "end"


def read_rows(
    repo: Repository,
    todo: list[tuple[str, int]],
    progress: Callable[[int, int], None] | None,
    every: int,
) -> dict[str, Prepared]:
    """The rows of every manifest (key, size) in ``todo`` that reads and checks, by key in
    ``todo``'s order; a damaged one is left out (verify reports it). ``progress`` hears
    (read, to read) each time ``every`` more are read, and at the end."""
    child = _Child.start(repo, todo[1::2]) if _worth_a_child(repo, len(todo)) else None
    got: dict[str, Prepared] = {}
    mine = told = 0

    def read(key: str, size: int) -> None:
        nonlocal mine, told
        with contextlib.suppress(ModelManagerError):
            got[key] = prepare(key, repo.read_manifest_key(key), size)
        mine += 1
        now = min(len(todo), mine + (child.answered if child is not None else 0))
        if progress is not None and now - told >= every:
            progress(now, len(todo))
            told = now

    try:
        if child is None:
            for key, size in todo:
                read(key, size)
        else:
            for key, size in todo[::2]:
                read(key, size)
            # Then the child's share from its end while it works from its start, until they
            # meet: neither waits for the other however the cores are shared.
            theirs, end = todo[1::2], len(todo[1::2])
            while end > child.answered and not child.ended:
                end -= 1
                read(*theirs[end])
            child.stop()
            got.update((k, p) for k, p in child.rows.items() if k not in got)
            # Whatever the child did not answer for is read here (it stopped, or failed).
            for key, size in theirs[:end]:
                if key not in child.rows and key not in child.skipped:
                    read(key, size)
    finally:
        if child is not None:
            child.stop()
    if progress is not None and todo and told != len(todo):
        progress(len(todo), len(todo))
    return {key: got[key] for key, _size in todo if key in got}


def _worth_a_child(repo: Repository, count: int) -> bool:
    """Many to read, a second core, and a repository a child opens just as this process did
    (plain local folders: a test's or a remote's store factory stays in this process)."""
    return (
        count >= PARALLEL_FROM
        and usable_cores() >= 2
        and repo.blob_stores is LocalBlobStore
        and not repo.legacy
    )


class _Child:
    """A child reading its share of the manifests: keys go in on stdin, batches of rows come
    back on stdout, each a length and a ``marshal`` record, checked before use."""

    def __init__(self, proc: subprocess.Popen[bytes], keys: list[tuple[str, int]]) -> None:
        self.proc = proc
        self.asked = dict(keys)
        self.rows: dict[str, Prepared] = {}
        self.skipped: set[str] = set()
        # Read by the parent's thread: the child answered for the first ``answered`` keys.
        self.answered = 0
        self.ended = False  # no more will come
        self._threads = [
            threading.Thread(target=self._send, args=(marshal.dumps(keys),), daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]
        for t in self._threads:
            t.start()

    @classmethod
    def start(cls, repo: Repository, keys: list[tuple[str, int]]) -> _Child | None:
        """A child reading ``keys`` from ``repo``, or None when none could start (this
        process then reads them all)."""
        try:
            proc = subprocess.Popen(
                python_child(CATALOG_FLAG, _CHILD_CODE, str(repo.root)),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                cwd=NEUTRAL_FOLDER, env=child_environment(),
            )  # fmt: skip
        except OSError:
            return None
        return cls(proc, keys)

    def _send(self, data: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        with contextlib.suppress(OSError):  # the child died: the parent reads its share
            stdin.write(data)
        with contextlib.suppress(OSError):
            stdin.close()

    def _receive(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                head = stdout.read(8)
                if len(head) < 8:
                    return
                size = int.from_bytes(head, "little")
                body = stdout.read(size)
                if len(body) < size:
                    return
                record = marshal.loads(body)
                if record == _END or not self._take(record):
                    return
        except (OSError, ValueError, EOFError, TypeError):
            return  # a broken answer: what it lacks, the parent reads
        finally:
            self.ended = True

    def _take(self, record: Any) -> bool:
        """Keep one batch (rows, skipped keys) if it is well formed and answers only what was
        asked; False (nothing kept) otherwise."""
        if not (type(record) is tuple and len(record) == 2):
            return False
        rows, skipped = record
        if not (type(rows) is list and type(skipped) is list):
            return False
        if not all(well_formed(p) and self.asked.get(p[0]) == p[1] for p in rows):
            return False
        if not all(type(k) is str and k in self.asked for k in skipped):
            return False
        for p in rows:
            self.rows[p[0]] = p
        self.skipped.update(skipped)
        self.answered += len(rows) + len(skipped)
        return True

    def stop(self) -> None:
        """End the child if it still runs (the parent has the rest, or failed); again is
        harmless."""
        if self.proc.poll() is None:
            self.proc.kill()
        for t in self._threads:
            t.join()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _write(out: IO[bytes], record: Any) -> None:
    body = marshal.dumps(record)
    out.write(len(body).to_bytes(8, "little") + body)
    out.flush()


def child_main(argv: list[str]) -> int:  # pragma: no cover - runs in the child
    """The child's side: read the keys on stdin from the repository ``argv[0]``, and write
    the rows of each batch (and the keys whose manifest is damaged) to stdout."""
    gc.disable()  # manifests and rows are acyclic (see Catalog.sync)
    try:
        keys = marshal.load(sys.stdin.buffer)
        repo = Repository.open(Path(argv[0]))
        out = sys.stdout.buffer
        rows: list[Prepared] = []
        skipped: list[str] = []
        for key, size in keys:
            try:
                rows.append(prepare(key, repo.read_manifest_key(key), size))
            except ModelManagerError:
                skipped.append(key)
            if len(rows) + len(skipped) >= BATCH:
                _write(out, (rows, skipped))
                rows, skipped = [], []
        _write(out, (rows, skipped))
        _write(out, _END)
    except Exception:  # the parent reads whatever was not answered
        return 1
    return 0
