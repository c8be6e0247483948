"""The per-user log file: what went wrong, kept after the window closes or the command ends.

Qt-free, so the command line and the window log the same way. Bugs and integrity errors are
written with their traceback (a person reporting one can send it); user errors stay one line,
as they are shown. The file rotates, so it never grows past a few megabytes.
"""

from __future__ import annotations

import logging
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path

from modelmanager import paths
from modelmanager.errors import Cancelled, IntegrityError, ModelManagerError

LOGGER = "modelmanager"
LOG_FILE = "modelmanager.log"
#: One file of up to 1 MB and three older ones.
MAX_BYTES, BACKUPS = 1_000_000, 3
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
_SETUP_LOCK = threading.Lock()


def log_path() -> Path:
    """The current log file (in paths.log_dir(), which tests redirect)."""
    return paths.log_dir() / LOG_FILE


def setup() -> Path:
    """Send the ``modelmanager`` logger to the rotating log file; returns the file's path.

    Idempotent; when the log folder moved (tests redirect it), the handler follows. A log
    folder that cannot be made never stops the program: nothing is logged then.
    """
    with _SETUP_LOCK:  # two jobs failing at once on two threads must not add two handlers
        return _setup()


def _setup() -> Path:
    logger = logging.getLogger(LOGGER)
    path = log_path()
    for handler in list(logger.handlers):
        if isinstance(handler, RotatingFileHandler):
            if Path(handler.baseFilename) == path.absolute():
                return path
            logger.removeHandler(handler)
            handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
    except OSError:
        return path
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path


def is_bug(error: BaseException) -> bool:
    """True for what deserves a traceback: a bug (not one of ours) or damaged data."""
    return isinstance(error, IntegrityError) or not isinstance(error, ModelManagerError)


def failure(what: str, error: BaseException) -> None:
    """Log that ``what`` failed: bugs and integrity errors with traceback, others in one line."""
    if isinstance(error, Cancelled):
        return
    setup()
    log = logging.getLogger(LOGGER)
    if is_bug(error):
        log.error("%s failed: %s", what, error, exc_info=error)
    else:
        log.info("%s failed: %s", what, " ".join(str(error).split()))


def read_tail(limit: int = 200_000) -> str:
    """The end of the current log file (what a viewer shows), or "" when nothing is logged."""
    try:
        with open(log_path(), "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
