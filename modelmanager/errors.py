"""The one exception tree of ModelManager.

Every error a user can cause or meet carries the file it concerns, the cause in words, and the
exit code the command line returns for it. The fronts print ``str(error)`` as one line; user
errors get no traceback, integrity errors and bugs are logged with one.
"""

from __future__ import annotations

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
