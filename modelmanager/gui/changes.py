"""What changed in an open repository: from a job's result, or written by another process.

The window refreshes only what a ``Changes`` names. Writes made beside the window (the command
line setting a policy, a label, importing a version, adding a device) are noticed by watching
the repository's own folder and ``models/`` with a QFileSystemWatcher (every writer rewrites the
change record, changes.json, in the repository's folder), and by the same cheap check when the
window gets the focus (a watcher can miss changes on network folders). The check compares a
stamp of the layout files and the change record; when it differs, the policies and devices and the
catalog are re-read under the writer lock (so never under a write of this program), and the
difference becomes a ``Changes`` like any job's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer

from modelmanager import logs
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import DEVICES_FILE
from modelmanager.core.repo.changes import CHANGES_FILE, ChangeLog, read_log
from modelmanager.core.repo.names import model_key
from modelmanager.core.repo.versions import CONFIG_KEY, POLICY_KEY
from modelmanager.errors import LockedError
from modelmanager.services import Changes, Workspace

if TYPE_CHECKING:
    from modelmanager.gui.jobs_bridge import JobRunner

#: Files of the repository's own folder that say how it stores (changing any re-reads them).
LAYOUT_FILES = (CONFIG_KEY, POLICY_KEY, DEVICES_FILE)
#: Folders of a model whose entries change when versions come or go.
VERSION_FOLDERS = ("versions", "removed")
#: Wait this long after a watched folder changes, so one write's several files are one check.
SETTLE_MS = 150
#: Retry this long after finding the writer lock taken (the writer is not done yet).
BUSY_RETRY_MS = 500


@dataclass(frozen=True)
class Stamp:
    """What the window last saw of a repository's metadata, in a few stat calls and one read:
    the layout files, the change record every writer keeps (changes.json, see the format
    doc), and the model folders' names. Nothing per manifest: a check costs the same with 10
    or 10,000 models (it used to stat every metadata file and watch four folders a model)."""

    root: Path
    files: tuple[tuple[str, int, int], ...]
    log: ChangeLog | None
    names: frozenset[str]
    taken_ns: int = field(compare=False)  # when it was taken: not part of what it saw


def merged(changes: Iterable[Changes]) -> Changes:
    """One ``Changes`` naming everything ``changes`` name (several results of one job: the
    window then refreshes once, not once per result)."""
    models: set[str] = set()
    versions: dict[str, None] = {}
    storage = False
    for c in changes:
        models |= c.models
        versions.update(dict.fromkeys(c.versions))
        storage = storage or c.storage
    return Changes(frozenset(models), tuple(versions), storage)


def _names(root: Path) -> frozenset[str]:
    try:
        with os.scandir(root / "models") as it:
            return frozenset(e.name.replace("~", "/") for e in it if e.is_dir())
    except OSError:
        return frozenset()


def metadata_stamp(root: Path) -> Stamp:
    """The :class:`Stamp` of the repository in ``root`` now."""
    taken = time.time_ns()
    files = []
    for name in (*LAYOUT_FILES, CHANGES_FILE):
        try:
            st = (root / name).stat()
        except OSError:
            continue
        files.append((name, st.st_mtime_ns, st.st_size))
    return Stamp(root, tuple(files), read_log(root), _names(root), taken)


def _versions_moved(root: Path, models: frozenset[str], since_ns: int) -> bool:
    for model in models:
        for folder in VERSION_FOLDERS:
            try:
                if (root / model_key(model) / folder).stat().st_mtime_ns >= since_ns:
                    return True
            except OSError:
                continue
    return False


def stamp_changes(old: Stamp, new: Stamp) -> Changes:
    """The ``Changes`` between two stamps: the models the change record names (every model
    when it cannot tell, or when the policy changed: their policies may have), storage when
    devices or versions came or went."""
    differ = {f[0] for f in set(old.files) ^ set(new.files)}
    every = old.names | new.names
    since = None
    if old.log is not None and new.log is not None and old.log.epoch == new.log.epoch:
        since = new.log.since(old.log.generation)
    if since is None and (CHANGES_FILE in differ or old.names != new.names):
        models = every  # the record cannot tell (damaged, replaced, too far behind)
    else:
        models = frozenset(since or ()) | (old.names ^ new.names)
    if POLICY_KEY in differ or CONFIG_KEY in differ:
        models = every
    storage = (
        DEVICES_FILE in differ
        or old.names != new.names
        or _versions_moved(new.root, models & new.names, old.taken_ns)
    )
    return Changes(frozenset(models), storage=storage)


def _watched_folders(root: Path) -> list[str]:
    """The folders whose entries change when metadata is written (files are replaced by
    renaming, so watching the folders sees every write): the repository's own (the layout
    files and the change record every writer rewrites) and ``models/`` (models come and go)."""
    return [str(f) for f in (root, root / "models") if f.is_dir()]


def _reread(ws: Workspace, old: Stamp | None) -> tuple[Stamp, list[str], Changes] | None:
    """On a pool thread: the new stamp, the folders to watch and what changed since ``old``
    (re-reading policies, devices and catalog if anything did); None while a writer works."""
    stamp = metadata_stamp(ws.repo.root)
    folders = _watched_folders(ws.repo.root)
    if old is None or stamp == old:
        return stamp, folders, Changes()
    try:
        # Taking the writer lock re-reads the policy and devices if they changed on disk (and
        # never swaps the chunk store under a running write).
        with ws.repo.writer(timeout=0):
            stamp = metadata_stamp(ws.repo.root)
            ws.catalog.sync()
    except LockedError:
        return None
    return stamp, folders, stamp_changes(old, stamp)


class RepositoryWatch(QObject):
    """Notices writes to one repository's metadata and reports them as ``Changes``."""

    def __init__(
        self, ws: Workspace, runner: JobRunner, changed: Callable[[Workspace, Changes], None]
    ) -> None:
        super().__init__()
        self.ws, self.runner, self.changed = ws, runner, changed
        self.stamp: Stamp | None = None
        self.checking = False
        self.again = False
        self.stopped = False
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self.soon)
        self.watcher.fileChanged.connect(self.soon)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.check)
        self.check()  # the first stamp: what the window shows now

    def soon(self, _path: str = "", delay_ms: int = SETTLE_MS) -> None:
        """Check once the folder stops changing (a write renames several files)."""
        self.timer.start(delay_ms)

    def check(self) -> None:
        """Compare the metadata with the last stamp, in a job; report what changed."""
        if self.stopped:
            return
        if self.checking:
            self.again = True  # one more check after this one: a change came meanwhile
            return
        self.checking, self.again = True, False
        ws, old = self.ws, self.stamp

        def run(_ctx: JobContext) -> tuple[Stamp, list[str], Changes] | Exception | None:
            try:
                return _reread(ws, old)
            except Exception as e:  # logged; the next change checks again
                logs.failure(f"Reading changes of {ws.repo.root}", e)
                return e

        self.runner.submit(f"Read changes of {ws.repo.root.name}", run, self._checked)

    def _checked(self, result: tuple[Stamp, list[str], Changes] | Exception | None) -> None:
        self.checking = False
        if isinstance(result, Exception) or self.stopped:
            return
        if result is None:
            self.soon(delay_ms=BUSY_RETRY_MS)  # a writer holds the lock: look when it is done
            return
        self.stamp, folders, changes = result
        missing = sorted(set(folders) - set(self.watcher.directories()))
        if missing:
            self.watcher.addPaths(missing)
        if changes != Changes():
            self.changed(self.ws, changes)
        if self.again:
            self.check()

    def stop(self) -> None:
        """Stop watching (the repository or the window was closed)."""
        self.stopped = True
        self.timer.stop()
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
