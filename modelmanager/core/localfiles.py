"""Read only what the user chose: regular files, and links that stay inside a root (issue 15).

An import (or an adopt) reads the files the user named and, for a folder, the regular files
under it. A link is followed only when its fully resolved target stays inside the root the
user chose (rule ``inside``, the default), always (``follow``) or never (``refuse``); linked
folders obey the same rule and a link back into a folder being walked is refused. FIFOs,
sockets and device files are refused before they are opened. Every open is non-blocking and
checked to be the very regular file that was listed, so nothing swapped in afterwards can hang
a read or divert it. Names that are not valid UTF-8 are refused, escaped, before anything is
read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelmanager.errors import NotFoundError, UserError

#: What ``--symlinks`` accepts; ``inside`` is the default.
SYMLINK_RULES = ("inside", "follow", "refuse")
#: Files and folders one input may list.
MAX_ENTRIES = 200_000
#: Links that may lead to one folder: bounds a walk through folders that link to each other
#: twice over (2**30 paths from 60 links) to a few times the folders' own entries.
MAX_LINKED = 4
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)  # fmt: skip


@dataclass(frozen=True)
class Listed:
    """A regular file to read: its name in the version, its path, and what it was when listed."""

    relpath: str
    path: Path  # as the user sees it: a link keeps its own path
    size: int
    mtime_ns: int
    identity: tuple[int, int]  # (device, inode) of the bytes, checked again on open


def _name(path: str | os.PathLike[str]) -> str:
    """``path`` for a message: as it is, or ``repr`` of its bytes when it is not valid UTF-8."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return repr(os.fsencode(text))
    return text


def check_name(path: Path, name: str) -> str:
    """``name`` if it is valid UTF-8 (versions store UTF-8 names), else a UserError naming
    ``path`` by its escaped bytes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{_name(path)}: file name is not valid UTF-8; rename it to import it"
                        ) from None  # fmt: skip
    return name


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ('' for a regular file)."""
    for test, word in ((stat.S_ISREG, ""), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISLNK, "a link")):  # fmt: skip
        if test(mode):
            return word
    return "a special file"


def open_regular(
    path: Path, identity: tuple[int, int] | None = None, buffering: int = -1
) -> BinaryIO:
    """Open ``path`` for reading without blocking, and only if it is a regular file (and still
    the one listed as ``identity``, if given); a FIFO or another file swapped in is refused."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        problem = _not_listed(os.fstat(fd), identity)
    except OSError:
        os.close(fd)
        raise
    if problem:
        os.close(fd)
        raise UserError(problem, path=_name(path))
    return os.fdopen(fd, "rb", buffering=buffering)


def _not_listed(st: os.stat_result, identity: tuple[int, int] | None) -> str:
    """Why an opened file is not the regular file listed as ``identity`` ('' if it is)."""
    if not stat.S_ISREG(st.st_mode):
        return f"is {kind_of(st.st_mode)} now, not a regular file (it changed since it was listed)"
    if identity is not None and (st.st_dev, st.st_ino) != identity:
        return "was replaced since it was listed; try again"
    return ""


def _target(path: Path, visible: Path | None = None) -> tuple[Path, os.stat_result]:
    """Where the link ``path`` ends (fully resolved) and what is there; errors name both
    (the link as ``visible``, by default ``path``)."""
    visible = visible or path
    try:
        raw = _name(os.readlink(path))
    except OSError:
        raw = "?"
    try:
        real = path.resolve(strict=True)
        return real, os.stat(real)
    except FileNotFoundError:
        raise NotFoundError(f"is a broken link (to {raw})", path=_name(visible)) from None
    except RuntimeError:  # Python before 3.13 reports a loop so
        raise UserError(f"is a link loop (to {raw})", path=_name(visible)) from None
    except OSError as e:
        why = "a link loop" if e.errno == getattr(os, "ELOOP", -1) else e.strerror or e
        raise UserError(f"cannot follow the link to {raw} ({why})", path=_name(visible)) from None


class _Lister:
    """One input's regular files, by the rule for links, confined to ``root`` (resolved)."""

    def __init__(self, rule: str, root: Path, skip: Collection[str]) -> None:
        if rule not in SYMLINK_RULES:
            raise UserError(f"unknown rule for links {rule!r} (one of: {', '.join(SYMLINK_RULES)})")
        self.rule, self.root, self.skip = rule, root, skip
        self.found: list[Listed] = []
        self.entries = 0
        self.linked: dict[tuple[int, int], int] = {}  # folder -> times a link led to it

    def follow(self, path: Path, visible: Path | None = None) -> tuple[Path, os.stat_result]:
        """The target of the link ``path`` if the rule lets it be read, else a UserError
        naming it as ``visible`` (the path the user sees, by default ``path``)."""
        visible = visible or path
        if self.rule == "refuse":
            raise UserError(f"is a link (to {_name(os.readlink(path))}); links are refused "
                            "(--symlinks refuse)", path=_name(visible))  # fmt: skip
        real, st = _target(path, visible)
        kind = kind_of(st.st_mode)
        if kind not in ("", "a folder"):
            raise UserError(f"is a link to {_name(real)}, {kind}, not a regular file",
                            path=_name(visible))  # fmt: skip
        self.confine(visible, real)
        return real, st

    def confine(self, path: Path, real: Path) -> None:
        """Refuse ``path`` when it really lies at ``real``, outside the root (rule ``inside``)."""
        if self.rule == "inside" and not real.is_relative_to(self.root):
            raise UserError(f"is a link to {_name(real)}, outside {_name(self.root)}; links are "
                            "followed only inside what is imported (--symlinks follow reads "
                            "it anyway)", path=_name(path))  # fmt: skip

    def check_folder_link(self, visible: Path, real: Path, st: os.stat_result,
                          chain: tuple[str, ...]) -> None:  # fmt: skip
        """Refuse a linked folder that leads back into the walk (a loop: it holds or is one
        of the folders being walked) or that links have already led to MAX_LINKED times."""
        target = str(real)
        under = target if target.endswith(os.sep) else target + os.sep
        if any(c == target or c.startswith(under) for c in chain):
            raise UserError(f"is a link to {_name(real)}, which leads back into itself "
                            "(a link loop)", path=_name(visible))  # fmt: skip
        key = (st.st_dev, st.st_ino)
        self.linked[key] = self.linked.get(key, 0) + 1
        if self.linked[key] > MAX_LINKED:
            raise UserError(f"is a link to {_name(real)}, a folder links already lead to "
                            f"{MAX_LINKED} times; import it without the links",
                            path=_name(visible))  # fmt: skip

    def add(self, relpath: str, path: Path, st: os.stat_result) -> None:
        self.found.append(Listed(relpath, path, st.st_size, st.st_mtime_ns, (st.st_dev, st.st_ino)))

    def walk(self, top: Path, top_real: Path) -> None:
        """Every regular file under ``top``, names relative to it, sorted; an unreadable
        folder, a special file, or a link the rule refuses stops the listing with its name.

        Messages name the path as the user sees it; below a linked folder, files are read
        through the folder's resolved path (no chain of links to follow again, or too long)."""
        stack: list[tuple[Path, Path, str, Path, tuple[str, ...]]] = [
            (top, top, "", top_real, (str(top_real),))
        ]
        while stack:
            folder, seen_as, prefix, real, chain = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                raise UserError(f"cannot read folder ({e.strerror or e})", path=_name(seen_as)
                                ) from None  # fmt: skip
            subfolders = []
            for entry in entries:
                self.entries += 1
                if self.entries > MAX_ENTRIES:
                    raise UserError(f"holds more than {MAX_ENTRIES:,} files and folders (links "
                                    "counted each time); import a smaller folder",
                                    path=_name(top))  # fmt: skip
                path, visible = Path(folder, entry.name), Path(seen_as, entry.name)
                check_name(visible, entry.name)
                st = entry.stat(follow_symlinks=False)
                entry_real = real / entry.name
                if stat.S_ISLNK(st.st_mode):
                    entry_real, st = self.follow(path, visible)
                    if stat.S_ISDIR(st.st_mode):
                        self.check_folder_link(visible, entry_real, st, chain)
                        path = entry_real  # walked by its real path: no links to follow again
                if stat.S_ISDIR(st.st_mode):
                    if entry.name not in self.skip:
                        subfolders.append((path, visible, f"{prefix}{entry.name}/", entry_real,
                                           (*chain, str(entry_real))))  # fmt: skip
                elif stat.S_ISREG(st.st_mode):
                    self.add(prefix + entry.name, path, st)
                else:
                    raise UserError(f"is {kind_of(st.st_mode)}, not a regular file",
                                    path=_name(visible))  # fmt: skip
            stack.extend(reversed(subfolders))


def list_input(
    path: Path,
    *,
    rule: str = "inside",
    name: str | None = None,
    confine: Path | None = None,
    skip: Collection[str] = (),
) -> list[Listed]:
    """The regular files one input stands for: a named file (stored as ``name`` or its own
    name), or every regular file under a named folder (names relative to it; folders named
    in ``skip`` left out).

    The root links must stay inside is ``confine`` when given (adopt gives the store's
    folder), else the named folder itself. A named file that is itself a link is the user's
    own choice: followed when its target is a regular file (and, with ``confine``, inside it),
    refused under rule ``refuse``.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise NotFoundError("no such file or folder", path=_name(path)) from None
    except OSError as e:
        raise UserError(f"cannot read it ({e.strerror or e})", path=_name(path)) from None
    real = path.absolute()
    lister = _Lister(rule, confine.resolve() if confine is not None else real, skip)
    if stat.S_ISLNK(st.st_mode):
        real, st = lister.follow(path) if confine is not None else _followed(path, lister)
    elif confine is not None:
        real = path.resolve()
        lister.confine(path, real)
    if stat.S_ISDIR(st.st_mode):
        if confine is None:
            lister.root = real = path.resolve()
        lister.walk(path, real)
        return lister.found
    kind = kind_of(st.st_mode)
    if kind:
        raise UserError(f"is {kind}, not a regular file", path=_name(path))
    lister.add(check_name(path, name if name is not None else path.name), path, st)
    return lister.found


def _followed(path: Path, lister: _Lister) -> tuple[Path, os.stat_result]:
    """A named link without a confining root: refused only by rule ``refuse`` or when it
    ends at something that is neither a regular file nor a folder."""
    if lister.rule == "refuse":
        return lister.follow(path)  # raises
    real, st = _target(path)
    kind = kind_of(st.st_mode)
    if kind not in ("", "a folder"):
        raise UserError(f"is a link to {_name(real)}, {kind}, not a regular file",
                        path=_name(path))  # fmt: skip
    return real, st
