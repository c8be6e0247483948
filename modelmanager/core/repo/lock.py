"""The writer lock: one writer per repository at a time; readers never take it.

The lock is an OS advisory lock (flock, or msvcrt on Windows) on ``locks/writer.lock``, so it
vanishes with the process that held it: a killed writer leaves no stale lock behind. Beside it,
``writer.json`` records host, pid, command and time so a waiting writer can say who holds it.

A writer that finds the lock taken waits for it (as long as its caller allows, which on the
command line is until the holder finishes or Ctrl+C), saying once who holds it. A lock whose
holder died is free at once: there is nothing to take over, the OS let it go.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from modelmanager.core.storage.atomic import atomic_write
from modelmanager.errors import Cancelled, LockedError

#: How often (seconds) a waiting writer retries the lock and looks at its cancel flag.
POLL = 0.05


def _stop_if(cancelled: Callable[[], bool] | None) -> None:
    """Raise :class:`Cancelled` when the waiting job was cancelled."""
    if cancelled is not None and cancelled():
        raise Cancelled()


if sys.platform == "win32":
    import msvcrt

    def _try_lock(f: IO[bytes]) -> bool:
        f.seek(0)  # the byte locked is the one at the file position: always the first
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(f: IO[bytes]) -> None:
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(f: IO[bytes]) -> bool:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(f: IO[bytes]) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _both(
    first: Callable[[str], None] | None, second: Callable[[str], None] | None
) -> Callable[[str], None] | None:
    """One callback telling both (either may be None)."""
    if first is None or second is None:
        return first or second

    def tell(text: str) -> None:
        first(text)
        second(text)

    return tell


def _same_file(f: IO[bytes], path: Path) -> bool:
    """True when the open file ``f`` is still the file named ``path``."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(f.fileno())
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _command_line() -> str:
    """This process's command as a person typed it: ``modelmanager import ...``."""
    program = Path(sys.argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name
    return " ".join([name, *sys.argv[1:]])


class WriterLock:
    """An exclusive writer lock on a repository folder, re-entrant within one thread.

    Threads of one process (the GUI's job pool) queue on an in-process lock first, with the
    same timeout; the OS lock then excludes other processes.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "writer.lock"
        self.info_path = folder / "writer.json"
        self._file: IO[bytes] | None = None
        self._depth = 0
        self._owner: int | None = None
        self._mutex = threading.RLock()
        #: Also told (once) when a take of this lock has to wait: the command line prints it.
        self.notify: Callable[[str], None] | None = None

    def holder(self) -> dict[str, Any] | None:
        """Who holds (or last held) the lock, as recorded beside it."""
        try:
            info = json.loads(self.info_path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _describe_holder(self) -> str:
        info = self.holder()
        if not info:
            return "another writer"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
        return (
            f"process {info.get('pid')} on {info.get('host')} ({info.get('command', '?')}) "
            f"since {since}"
        )

    def acquire(
        self,
        timeout: float = 0.0,
        on_wait: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; LockedError says who holds it.

        While it waits, ``cancelled`` is asked every :data:`POLL` seconds: once it says yes,
        :class:`Cancelled` is raised and the lock is not taken, so a cancelled job writes nothing.
        """
        deadline = time.monotonic() + timeout
        on_wait = _both(on_wait, self.notify)
        if not self._take_mutex(deadline, on_wait, cancelled):
            raise LockedError(
                "repository is being written by another job of this program; "
                "try again when it finishes",
                path=self.path.parent.parent,
            )
        if self._depth:
            self._depth += 1
            return
        try:
            self._take_os_lock(deadline, on_wait, cancelled)
        except BaseException:
            self._mutex.release()
            raise
        self._depth = 1
        self._owner = threading.get_ident()

    def _take_mutex(
        self, deadline: float, on_wait: Callable[[str], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> bool:  # fmt: skip
        """Queue behind other threads of this process, in slices so cancel is heard."""
        if self._mutex.acquire(blocking=False):
            return True
        if on_wait is not None and deadline > time.monotonic():
            on_wait("waiting for the writer lock held by another job of this program")
        while True:
            _stop_if(cancelled)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._mutex.acquire(timeout=min(left, POLL)):
                return True

    def _take_os_lock(
        self, deadline: float, on_wait: Callable[[str], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> None:  # fmt: skip
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+b")  # noqa: SIM115 - held open for the lock's lifetime
            try:
                self._wait_for(f, deadline, on_wait, cancelled)
                if _same_file(f, self.path):
                    break
                # The lock file was deleted or replaced while we waited: the lock we hold is
                # on a name nobody else will open. Let it go and lock the file there now.
                _unlock(f)
            except BaseException:
                f.close()
                raise
            f.close()
        self._file = f
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": _command_line()[:200],
            "time": time.time(),
        }
        # Atomic, so a waiting writer never reads half of it; only used to name the holder
        # in messages, so a full or read-only disk does not stop the write here.
        with contextlib.suppress(OSError):
            atomic_write(self.info_path, json.dumps(info).encode())

    def _wait_for(
        self, f: IO[bytes], deadline: float, on_wait: Callable[[str], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> None:  # fmt: skip
        """Retry the OS lock every POLL seconds until taken, past the deadline or cancelled."""
        told = False
        while True:
            _stop_if(cancelled)
            if _try_lock(f):
                break
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"repository is being written by {self._describe_holder()}; "
                    "try again when it finishes",
                    path=self.path.parent.parent,
                )
            if on_wait and not told:
                on_wait(f"waiting for the writer lock held by {self._describe_holder()}")
                told = True
            time.sleep(min(POLL, max(deadline - time.monotonic(), 0.0)))
        if told and cancelled is not None and cancelled():
            _unlock(f)  # cancelled as the holder let go: give it back, write nothing
            raise Cancelled()

    def release(self) -> None:
        """Give the lock back (the outermost release of a re-entrant hold frees it)."""
        if not self.held:
            return
        self._depth -= 1
        try:
            if self._depth == 0 and self._file is not None:
                f, self._file, self._owner = self._file, None, None
                try:
                    _unlock(f)
                finally:
                    f.close()
        finally:
            self._mutex.release()

    @property
    def held(self) -> bool:
        """True while the calling thread holds the lock."""
        return self._depth > 0 and self._owner == threading.get_ident()
