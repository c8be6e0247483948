"""What changed in an open repository: from a job's result, or written by another process.

The window refreshes only what a ``Changes`` names. Writes made beside the window (the command
line setting a policy, a label, importing a version, adding a device) are noticed by watching
the repository's metadata folders with a QFileSystemWatcher, and by the same cheap check when
the window gets the focus (a watcher can miss changes on network folders). The check compares a
stamp of the metadata files; when it differs, the repository's policies and devices and the
catalog are re-read under the writer lock (so never under a write of this program), and the
difference becomes a ``Changes`` like any job's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer

from modelmanager import logs
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import DEVICES_FILE
from modelmanager.core.repo.versions import CONFIG_KEY, POLICY_KEY
from modelmanager.errors import LockedError
from modelmanager.services import Changes, Workspace

if TYPE_CHECKING:
    from modelmanager.gui.jobs_bridge import JobRunner

#: Files of the repository's own folder that say how it stores (changing any re-reads them).
LAYOUT_FILES = (CONFIG_KEY, POLICY_KEY, DEVICES_FILE)
#: Folders of each model whose entries are its versions, labels and removal records.
MODEL_FOLDERS = ("versions", "labels", "removed")
#: Wait this long after a watched folder changes, so one write's several files are one check.
SETTLE_MS = 150
#: Retry this long after finding the writer lock taken (the writer is not done yet).
BUSY_RETRY_MS = 500

#: Relative path -> (modification time in ns, size) of every metadata file.
Stamp = dict[str, tuple[int, int]]


def changes_of(result: Any, fallback: Changes = Changes()) -> Changes:  # noqa: B008 - frozen
    """The ``changes`` a service's result carries, else ``fallback`` (services not yet
    returning Changes: the caller says what they change)."""
    changes = getattr(result, "changes", None)
    return changes if isinstance(changes, Changes) else fallback


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:
        return []  # absent (a model without labels) or removed meanwhile


def metadata_stamp(root: Path) -> Stamp:
    """(mtime, size) of the config, policy and device files, every manifest, label and
    removal record: a few stat calls per model, far cheaper than reading them."""
    stamp: Stamp = {}
    for name in LAYOUT_FILES:
        try:
            st = (root / name).stat()
        except OSError:
            continue
        stamp[name] = (st.st_mtime_ns, st.st_size)
    for model in _entries(root / "models"):
        for folder in MODEL_FOLDERS:
            for entry in _entries(Path(model.path) / folder):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                stamp[f"models/{model.name}/{folder}/{entry.name}"] = (st.st_mtime_ns, st.st_size)
    return stamp


def stamp_changes(old: Stamp, new: Stamp) -> Changes:
    """The ``Changes`` between two stamps: the models touched (every model when the policy
    changed: their policies may have), storage when devices or versions came or went."""
    differ = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    model_of = {k: k.split("/")[1].replace("~", "/") for k in old.keys() | new.keys()
                if k.startswith("models/")}  # fmt: skip
    models = {model_of[k] for k in differ if k in model_of}
    if POLICY_KEY in differ or CONFIG_KEY in differ:
        models |= set(model_of.values())
    versions_moved = any(k.split("/")[2] == "versions" for k in differ if k in model_of)
    return Changes(frozenset(models), storage=DEVICES_FILE in differ or versions_moved)


def _watched_folders(root: Path) -> list[str]:
    """The folders whose entries change when metadata is written (files are replaced by
    renaming, so watching the folders sees every write)."""
    folders = [root, root / "models"]
    for model in _entries(root / "models"):
        folders += [Path(model.path), *(Path(model.path) / f for f in MODEL_FOLDERS)]
    return [str(f) for f in folders if f.is_dir()]


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
