"""The one exception tree of ModelManager.

Every error a user can cause or meet carries the file it concerns, the cause in words, and the
exit code the command line returns for it. The fronts print ``str(error)`` as one line; user
errors get no traceback, integrity errors and bugs are logged with one.
"""

from __future__ import annotations

import errno as errnos
import os

from modelmanager.core.text import shown

# Exit codes shared by the command line and the tests.
EXIT_OK = 0
EXIT_PROBLEMS = 1  # a check ran and found problems (verify, later scrub)
EXIT_USAGE = 2  # bad input: arguments, files, references
EXIT_LOCKED = 3  # another writer holds the repository
EXIT_CANCELLED = 130
EXIT_BUG = 70  # an unexpected exception: a bug in ModelManager


class ModelManagerError(Exception):
    """Base of every error ModelManager raises on purpose."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None

    def __str__(self) -> str:
        # Names and paths in messages come from files: escaped, so no line can reorder or split.
        return shown(f"{self.path}: {self.message}" if self.path else self.message)


class UserError(ModelManagerError):
    """Bad input from the user: an argument, a name, a reference, a missing file."""


class NotFoundError(UserError):
    """A model, version, label or file that does not exist."""


class FormatError(UserError):
    """A file that claims a format but breaks its rules (truncated, bad offsets, bad header)."""


class RepositoryError(ModelManagerError):
    """A folder that is not a usable repository (missing, foreign, newer format)."""


class LockedError(ModelManagerError):
    """Another writer holds the repository's writer lock."""

    exit_code = EXIT_LOCKED


class IntegrityError(ModelManagerError):
    """Stored data failed verification: a missing or corrupt piece, a bad manifest."""

    exit_code = EXIT_PROBLEMS


class Cancelled(ModelManagerError):
    """A job stopped because it was asked to; nothing it wrote is visible."""

    exit_code = EXIT_CANCELLED

    def __init__(self, message: str = "cancelled", *, path: str | None = None) -> None:
        super().__init__(message, path=path)


class DoubtError(ModelManagerError):
    """A destructive operation refused because something it relies on is in doubt: a device
    that is not mounted or not what it claims, a metadata record failing its check, too many
    chunks missing. Nothing was changed; the message says what to fix."""

    exit_code = EXIT_PROBLEMS


#: What each resource fault means, in words (the errno's name follows in brackets).
_FAULT_WORDS = {
    errnos.ENOSPC: "no space left on the device",
    errnos.EROFS: "the device is read-only",
    errnos.EIO: "input/output error (a failing disk or a lost connection)",
    errnos.EACCES: "permission denied",
    errnos.EPERM: "operation not permitted",
    getattr(errnos, "EDQUOT", errnos.ENOSPC): "disk quota exceeded",
}


def fault_words(error: OSError) -> str:
    """An OSError's cause as a user reads it: ``no space left on the device (ENOSPC)``."""
    code = error.errno
    name = errnos.errorcode.get(code, "") if code is not None else ""
    words = _FAULT_WORDS.get(code or -1) or error.strerror or str(error) or "an I/O error"
    return f"{words} ({name})" if name else words


class DeviceError(ModelManagerError, OSError):
    """A device refused an operation: full (ENOSPC), read-only (EROFS), failing (EIO), not
    permitted (EACCES). Also an OSError with the same errno, so code that skips a failing
    device (``except OSError``) keeps doing so; the fronts print it as one line."""

    def __init__(self, message: str, *, err: int | None, device: str) -> None:
        ModelManagerError.__init__(self, message)
        OSError.__init__(self, err, message)
        self.errno = err
        self.device = device

    def __str__(self) -> str:
        return ModelManagerError.__str__(self)

    @classmethod
    def of(cls, error: OSError, device: str, doing: str) -> DeviceError:
        """``error`` (any OSError) as a DeviceError naming ``device`` ("device NAME (PATH)")
        and what was being done; a DeviceError keeps its own message (it named the device)."""
        if isinstance(error, DeviceError):
            return error
        return cls(f"{device}: {fault_words(error)} while {doing}", err=error.errno,
                   device=device)  # fmt: skip

    def then(self, done: str) -> DeviceError:
        """The same error with what had been done when it struck (``done``) appended."""
        return DeviceError(f"{self.message}; {done}", err=self.errno, device=self.device)
