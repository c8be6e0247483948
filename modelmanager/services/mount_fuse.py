"""A :class:`~modelmanager.services.mount.MountView` mounted through FUSE, read-only.

The binding is mfusepy (ctypes over libfuse 3 on Linux, libfuse 2 / macFUSE on macOS, WinFsp
on Windows; no compiler needed), imported only when a mount starts, so the app runs where it is
missing. Files open with the kernel's page cache kept (``keep_cache``; no ``direct_io``, so
``mmap`` works): a version's bytes never change. Every callback turns an error into an errno
(EIO for an unreadable chunk, with one line on stderr), never a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from modelmanager import logs
from modelmanager.core.ids import BytesLike
from modelmanager.errors import ModelManagerError, NotFoundError, UserError
from modelmanager.services import Workspace
from modelmanager.services.mount import Dir, File, Link, MountView

T = TypeVar("T")
BINDING = "mfusepy"
INSTALL_FUSE = "install FUSE 3 (Debian/Ubuntu: apt-get install fuse3)"
#: What libfuse 3's ``fuse_main`` returns when its loop ended on a signal (SIGINT, SIGTERM).
_STOPPED_BY_SIGNAL = 8
#: Seconds a thread holds the GIL before another may take it, while mounted.
SWITCH_INTERVAL = 0.0005
INSTALL_BINDING = "pip install 'modelmanager[mount]' (the mfusepy package)"
#: The kernel's read-ahead for the mount (KiB), where it may be set (Linux, as root).
READ_AHEAD_KB = 1024


def fuse_problem() -> str | None:
    """Why a mount cannot start here (one line saying what to install), or None."""
    system = platform.system()
    if system == "Linux":
        if not os.path.exists("/dev/fuse"):
            return f"/dev/fuse is missing: {INSTALL_FUSE}, and load the fuse kernel module"
        if not (shutil.which("fusermount3") or shutil.which("fusermount")):
            return f"fusermount3 is missing: {INSTALL_FUSE}"
    elif system not in ("Darwin", "Windows"):
        return f"mounting is not supported on {system}"
    try:
        _binding()
    except UserError as e:
        return str(e)
    return None


def _binding() -> Any:
    """The mfusepy module (it finds libfuse when imported)."""
    try:
        return importlib.import_module(BINDING)
    except ImportError:
        raise UserError(f"the mount needs {BINDING}: {INSTALL_BINDING}") from None
    except OSError as e:  # libfuse itself is missing or too old
        where = {"Darwin": "install macFUSE", "Windows": "install WinFsp"}
        how = where.get(platform.system(), INSTALL_FUSE)
        raise UserError(f"libfuse cannot be loaded ({e}): {how}") from None


def _said(message: str) -> None:
    print(f"modelmanager: {message}", file=sys.stderr, flush=True)


def _errno(what: str, path: str, call: Callable[[], T]) -> T:
    """``call()``, with every failure turned into an OSError carrying an errno (a damaged
    chunk says so on stderr once per read; a bug goes to the log)."""
    try:
        return call()
    except OSError:
        raise
    except NotFoundError:
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT)) from None
    except ModelManagerError as e:
        _said(f"error: {path}: {e}")
        raise OSError(errno.EIO, os.strerror(errno.EIO)) from None
    except Exception as e:
        logs.failure(f"mount: {what} {path}", e)
        _said(f"internal error reading {path}: this is a bug in ModelManager "
              f"(logged in {logs.log_path()})")  # fmt: skip
        raise OSError(errno.EIO, os.strerror(errno.EIO)) from None


class Operations:
    """The FUSE callbacks mfusepy calls (``raw_fi``: open sets the kernel's cache flags)."""

    use_ns = True  # times in nanoseconds

    def __init__(
        self, view: MountView, ready: Callable[[], None], where: Path | None = None
    ) -> None:
        self.view = view
        self.ready = ready
        self.where = where
        self.uid, self.gid = (os.getuid(), os.getgid()) if hasattr(os, "getuid") else (0, 0)
        self._open: dict[int, File] = {}
        self._next = 1
        self._lock = threading.Lock()
        self.mounted = False

    def init_with_config(self, conn: Any, config: Any) -> None:
        """The mount is up (the kernel's INIT): raise its read-ahead, then say it is ready.

        The kernel sets the mount's read-ahead to the smaller of the sysfs value and the one
        this INIT answers with, so both are raised (see :func:`raise_read_ahead`)."""
        self.mounted = True
        if self.where is not None:
            raise_read_ahead_at_init(self.where, conn)
        self.ready()

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        node = _errno("stat", path, lambda: self.view.node(path))
        ns = int(node.mtime * 1e9)
        attrs = {"st_uid": self.uid, "st_gid": self.gid, "st_atime": ns, "st_mtime": ns,
                 "st_ctime": ns}  # fmt: skip
        if isinstance(node, Dir):
            return {**attrs, "st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2}
        if isinstance(node, Link):
            return {**attrs, "st_mode": stat.S_IFLNK | 0o777, "st_nlink": 1,
                    "st_size": len(node.target)}  # fmt: skip
        return {**attrs, "st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": node.size,
                "st_blocks": (node.size + 511) // 512}  # fmt: skip

    def readdir(self, path: str, fh: Any) -> list[str]:
        node = _errno("list", path, lambda: self.view.node(path))
        if not isinstance(node, Dir):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        return [".", "..", *node.names]

    def readlink(self, path: str) -> str:
        node = _errno("readlink", path, lambda: self.view.node(path))
        if not isinstance(node, Link):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return node.target

    def access(self, path: str, amode: int) -> int:
        _errno("access", path, lambda: self.view.node(path))
        if amode & os.W_OK:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return 0

    def open(self, path: str, fi: Any) -> int:
        if fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        node = _errno("open", path, lambda: self.view.node(path))
        if not isinstance(node, File):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        with self._lock:
            handle, self._next = self._next, self._next + 1
            self._open[handle] = node
        fi.fh = handle
        fi.keep_cache = 1  # a version never changes: what the kernel cached stays right
        fi.direct_io = 0  # mmap needs the page cache
        return 0

    def read(self, path: str, size: int, offset: int, fi: Any) -> BytesLike:
        node = self._open.get(fi.fh)
        if node is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return _errno("read", node.name, lambda: self.view.read(node, offset, size))

    def release(self, path: str, fi: Any) -> int:
        with self._lock:
            self._open.pop(fi.fh, None)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}


def _fuse_class(fuse: Any) -> Any:
    """mfusepy's FUSE, reading straight from the chunk cache into the kernel's buffer.

    mfusepy's own ``read`` takes only ``bytes``, so each 1 MiB request would first be sliced
    out of its chunk (a copy, holding the GIL) and then copied again; here it is one copy,
    made by ``memmove`` without the GIL (docs/benchmarks.md)."""

    class Fuse(fuse.FUSE):  # type: ignore[misc]
        def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
            data = self.operations.read(None, size, offset, fip.contents)
            n = len(data)
            if n > size:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            if n:
                held = np.frombuffer(data, np.uint8)  # its address; keeps the bytes alive
                ctypes.memmove(buf, held.ctypes.data, n)
            return n

    return Fuse


def _check_mountpoint(where: Path) -> None:
    if not where.exists():
        raise UserError("no such folder to mount on", path=where)
    if not where.is_dir():
        raise UserError("not a folder: a mount needs an empty folder", path=where)
    if os.path.ismount(where):
        raise UserError("something is already mounted here", path=where)
    if platform.system() != "Windows" and any(where.iterdir()):
        raise UserError("the folder is not empty: mount on an empty folder", path=where)


def mount(
    ws: Workspace, where: Path, *, cache_bytes: int, ready: Callable[[Path], None] | None = None,
    threads: int | None = None,
) -> MountView:  # fmt: skip
    """Mount the repository on ``where`` (an empty folder) and serve reads until unmounted
    (``umount``, Ctrl+C or SIGTERM); returns the view it served, closed."""
    problem = fuse_problem()
    if problem is not None:
        raise UserError(f"cannot mount: {problem}")
    where = Path(where).absolute()
    _check_mountpoint(where)
    fuse = _binding()
    logging.getLogger("fuse").setLevel(logging.CRITICAL)  # errors are told by _errno
    # Each kernel request waits for the GIL while decode threads run Python: switch often
    # (measured: a mounted read ran at half the speed with the default 5 ms).
    sys.setswitchinterval(SWITCH_INTERVAL)
    view = MountView(ws, cache_bytes=cache_bytes, threads=threads)
    view.models()  # an unreadable repository fails here, before anything is mounted
    ops = Operations(view, lambda: ready(where) if ready else None, where)
    options: dict[str, Any] = {"foreground": True, "ro": True, "fsname": "modelmanager",
                               "default_permissions": True}  # fmt: skip
    if platform.system() == "Linux":
        options["subtype"] = "modelmanager"
        options["max_idle_threads"] = 8  # else libfuse 3.14 warns of its own default (-1)
    elif platform.system() == "Darwin":
        options["volname"] = "ModelManager"
    try:
        _fuse_class(fuse)(ops, str(where), raw_fi=True, **options)
    except RuntimeError as e:
        # libfuse 3 ends its loop with 8 when a signal (Ctrl+C, SIGTERM) stopped it: after it
        # was mounted, that is the way out asked for. Before, libfuse said why on stderr.
        if not (ops.mounted and e.args and e.args[0] == _STOPPED_BY_SIGNAL):
            raise UserError(f"cannot mount (libfuse returned {e})", path=where) from None
    finally:
        view.close()
    return view


def mount_device_number(where: Path) -> str | None:
    """The "major:minor" of the file system mounted on ``where`` (Linux), read from
    /proc/self/mountinfo: a ``stat`` of the mount point would ask the mount itself."""
    target = str(Path(where).absolute())
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        parts = line.split()
        if len(parts) > 4 and parts[4].replace("\\040", " ") == target:
            found = parts[2]  # the last one listed is on top
    return found


def raise_read_ahead(where: Path, kb: int = READ_AHEAD_KB) -> int | None:
    """Let the kernel read ahead ``kb`` KiB on the mount at ``where``; the read-ahead in force
    after (KiB), or None where it cannot be read.

    Linux gives a FUSE mount 128 KiB of read-ahead and lets only root raise it (sysfs), so a
    long read of a mounted file arrives as 128 KiB requests, each a round trip through
    Python; 1 MiB requests cut those eightfold (docs/benchmarks.md). Anyone else keeps 128.
    """
    knob = _read_ahead_knob(where)
    if knob is None:
        return None
    now = _knob_kb(knob)
    if now is not None and now < kb:
        with contextlib.suppress(OSError):  # not root: the kernel's default stays
            knob.write_text(f"{kb}\n")
    return _knob_kb(knob)


def _read_ahead_knob(where: Path) -> Path | None:
    """The sysfs file holding the read-ahead of the mount at ``where`` (Linux)."""
    device = mount_device_number(where)
    return None if device is None else Path("/sys/class/bdi") / device / "read_ahead_kb"


def _knob_kb(knob: Path) -> int | None:
    try:
        return int(knob.read_text())
    except (OSError, ValueError):
        return None


def read_ahead_kb(where: Path) -> int | None:
    """The kernel's read-ahead on the mount at ``where`` (KiB), or None where unknown."""
    knob = _read_ahead_knob(where)
    return None if knob is None else _knob_kb(knob)


def raise_read_ahead_at_init(where: Path, conn: Any) -> None:
    """In a FUSE INIT callback: raise the read-ahead both in sysfs and in the INIT reply
    (``conn``), as the kernel keeps the smaller of the two."""
    kb = raise_read_ahead(where)
    if kb is not None and conn is not None and hasattr(conn, "max_readahead"):
        conn.max_readahead = max(conn.max_readahead, kb * 1024)


def mounted_here(where: Path) -> bool:
    """True when ``where`` is one of our mounts (Linux: listed in /proc/mounts)."""
    target = str(Path(where).absolute())
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return os.path.ismount(target)
    for line in lines:
        parts = line.split()
        if len(parts) > 2 and parts[1].replace("\\040", " ") == target:
            return parts[0] == "modelmanager" or parts[2] == "fuse.modelmanager"
    return False


def unmount(where: Path) -> None:
    """Unmount a mount this program made (the mounting process then exits 0)."""
    where = Path(where).absolute()
    if not mounted_here(where):
        raise UserError("no modelmanager mount here", path=where)
    system = platform.system()
    if system == "Linux":
        tool = shutil.which("fusermount3") or shutil.which("fusermount")
        if tool is None:
            raise UserError(f"cannot unmount: fusermount3 is missing: {INSTALL_FUSE}")
        command = [tool, "-u", str(where)]
    else:
        command = ["umount", str(where)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"cannot unmount ({e})", path=where) from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"cannot unmount ({why[-1] if why else 'it failed'})", path=where)
