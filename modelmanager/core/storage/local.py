"""A BlobStore on a local folder: each key a file, every write atomic and fsynced."""

from __future__ import annotations

import builtins
import os
import shutil
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from modelmanager.core.ids import BytesLike
from modelmanager.core.storage.atomic import REPLACE_SUFFIX, TEMP_PREFIX, fsync_dir, replace_file
from modelmanager.core.storage.base import BlobNotFound, Capacity, check_key
from modelmanager.errors import DeviceError

#: Whether this OS can read "only from the page cache, never waiting for a disk" (Linux).
CAN_READ_RESIDENT = hasattr(os, "RWF_NOWAIT") and hasattr(os, "preadv")


def disk_capacity(folder: Path) -> Capacity | None:
    """Size and free space (for an unprivileged user) of the volume holding ``folder``, on
    every platform; None when it cannot be read (unmounted, no permission)."""
    try:
        usage = shutil.disk_usage(folder)
        volume = os.stat(folder).st_dev
    except OSError:
        return None
    return Capacity(usage.total, usage.free, volume)


def describe_folder(root: Path) -> str:
    """How an error names the device a folder is: "device NAME (PATH)" when the folder says
    which device it is (its identity file, or the repository's own config: main), else
    "folder PATH". Only for messages: a damaged or unreadable identity just gives the path."""
    # Imported here: the device and repository layers are built on this module.
    from modelmanager.core.placement import MAIN, read_identity
    from modelmanager.core.repo.versions import CONFIG_KEY

    try:
        identity = read_identity(root)
        if identity is not None:
            name = identity.get("name")
        else:
            name = MAIN if (root / CONFIG_KEY).is_file() else None
    except OSError:  # a message must never fail because the disk does
        name = None
    return f"device {name} ({root})" if isinstance(name, str) and name else f"folder {root}"


#: OSErrors that answer about a key (absent, exists, a folder in the way), not device faults.
_KEY_ANSWERS = (FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError)


class _Faults:
    """The context of :meth:`LocalBlobStore._faults`: a class, not a generator-based context
    manager (with a Path made per read, those took 0.36 s of the 0.76 s that reading 50,000
    small records took)."""

    __slots__ = ("doing", "root")

    def __init__(self, root: Path, doing: str) -> None:
        self.root, self.doing = root, doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, e: BaseException | None, tb: object) -> Literal[False]:
        if not isinstance(e, OSError) or isinstance(e, (DeviceError, *_KEY_ANSWERS)):
            return False  # no error, or an answer about keys, which callers handle
        raise DeviceError.of(e, describe_folder(self.root), self.doing) from e


class LocalBlobStore:
    """Blobs as files under ``root``; the folder layout mirrors the keys.

    An OSError other than "no such blob" leaves as a :class:`DeviceError` (itself an OSError
    with the same errno) naming the device and the file: a full, read-only or failing disk is
    one line for the user, never a traceback."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = str(self.root).rstrip(os.sep)  # "/" + key, never "//" + key
        self._pending_dirs: set[Path] = set()
        self._lock = threading.Lock()

    def _faults(self, doing: str) -> _Faults:
        """Turn an OSError of the block into a DeviceError naming this device and ``doing``."""
        return _Faults(self.root, doing)

    def path(self, key: str) -> Path:
        """The file that holds ``key``."""
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        """The file that holds ``key``, as a string: what reads open (a catalog rebuild reads
        every record, and a Path made per read was a sixth of that time)."""
        return self._root + os.sep + check_key(key).replace("/", os.sep)

    def _ensure_parent(self, path: Path) -> None:
        parent = path.parent
        if parent.is_dir():
            return
        created = []
        d = parent
        while not d.exists():
            created.append(d)
            d = d.parent
        parent.mkdir(parents=True, exist_ok=True)
        # A new folder's own entry lives in its parent: those must be synced too.
        with self._lock:
            self._pending_dirs.update(c.parent for c in created)

    def put(
        self,
        key: str,
        data: BytesLike | Sequence[BytesLike],
        *,
        exclusive: bool = False,
        sync: bool = True,
    ) -> int:
        path = self.path(key)
        with self._faults(f"writing {key}"):
            self._ensure_parent(path)
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()  # an empty folder where the blob belongs (damage): clear it
            size = replace_file(path, data, exclusive=exclusive)
        with self._lock:
            self._pending_dirs.add(path.parent)
        if sync:
            self.flush()
        return size

    def get(self, key: str) -> bytes:
        return self.get_range(key, 0, -1)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes ``offset``..``offset + length`` (``length`` -1: to the end)."""
        path = self._file(key)
        try:
            with self._faults(f"reading {key}"), open(path, "rb", buffering=0) as f:
                if offset:
                    f.seek(offset)
                return f.readall() if length < 0 else f.read(length)
        except FileNotFoundError:
            raise BlobNotFound("no such blob", path=path) from None
        except IsADirectoryError:
            raise BlobNotFound("a folder stands where a blob should be", path=path) from None

    def read_into(self, key: str, offset: int, dest: memoryview) -> int:
        """Fill ``dest`` from ``offset`` straight from the file; bytes read (fewer at the end)."""
        path = self._file(key)
        try:
            with self._faults(f"reading {key}"), open(path, "rb", buffering=0) as f:
                if offset:
                    f.seek(offset)
                done = 0
                while done < len(dest):
                    n = f.readinto(dest[done:])
                    if not n:
                        break
                    done += n
                return done
        except FileNotFoundError:
            raise BlobNotFound("no such blob", path=path) from None
        except IsADirectoryError:
            raise BlobNotFound("a folder stands where a blob should be", path=path) from None

    def read_resident(self, key: str, parts: Sequence[memoryview]) -> bool:
        """See :meth:`FolderStore.read_resident` (Linux: ``preadv`` with ``RWF_NOWAIT``)."""
        if not CAN_READ_RESIDENT:
            return False
        try:
            fd = os.open(self._file(key), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return False  # absent or unreadable: the caller's usual read says which
        total = sum(len(p) for p in parts)
        done = 0
        try:
            if os.fstat(fd).st_size != total:
                return False
            left = [p for p in parts if len(p)]
            while left:
                n = os.preadv(fd, left, done, os.RWF_NOWAIT)
                if n <= 0:
                    break
                done += n
                while left and n >= len(left[0]):  # drop the parts filled, cut the next
                    n -= len(left[0])
                    left.pop(0)
                if left and n:
                    left[0] = left[0][n:]
        except OSError:
            return False  # EAGAIN: not all in memory (or an error the usual read reports)
        finally:
            os.close(fd)
        return done == total

    def size(self, key: str) -> int | None:
        try:
            with self._faults(f"looking for {key}"):
                st = os.stat(self._file(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return None if stat.S_ISDIR(st.st_mode) else st.st_size  # a folder is no blob

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        base = self._file(prefix) if prefix else self._root or os.sep
        if os.path.isdir(base):
            yield from _files(base, len(self._root) + 1)

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            with self._faults(f"deleting {key}"):
                path.unlink()
        except FileNotFoundError:
            return
        with self._lock:
            self._pending_dirs.add(path.parent)

    def flush(self) -> None:
        with self._lock:
            dirs, self._pending_dirs = self._pending_dirs, set()
        # Deepest first, so a new folder's entries are durable before its own name is.
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            if d.exists():
                with self._faults(f"syncing {d}"):
                    fsync_dir(d)

    def capacity(self) -> Capacity | None:
        """Size and free space of the volume the folder is on (None when it cannot be read)."""
        return disk_capacity(self.root)

    def temp_files(self) -> builtins.list[Path]:
        """Temporary files left by writers that died before renaming them (temp files, and
        replacements written beside their key)."""
        found: builtins.list[Path] = []
        for dirpath, _dirnames, filenames in os.walk(self.root):
            found.extend(Path(dirpath, n) for n in filenames
                         if n.startswith(TEMP_PREFIX) or n.endswith(REPLACE_SUFFIX))  # fmt: skip
        return found


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _files(folder: str, skip: int) -> Iterator[tuple[str, int]]:
    """Every blob under ``folder`` as (its path less the first ``skip`` characters, with
    '/' between parts, size): a folder's own files in name order, then each subfolder's, as
    ``os.walk`` gave them, in a quarter less time (an entry's type comes with the listing).
    A folder that cannot be listed is passed over, as ``os.walk`` did; a symbolic link to a
    folder is not followed; a temporary file is no blob."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=_entry_name)
    except OSError:
        return
    subfolders = []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not entry.is_symlink():
                subfolders.append(entry.path)
        elif not entry.name.startswith(TEMP_PREFIX):
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            yield entry.path[skip:].replace(os.sep, "/"), size
    for sub in subfolders:
        yield from _files(sub, skip)
