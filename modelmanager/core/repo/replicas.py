"""Metadata records on every device: written everywhere, read from the first copy that checks.

A local repository keeps each record (manifest, label, removal record, policy, device list,
config) in its own folder (``main``, the primary) and a replica under ``meta/`` of every other
device that is mounted and not set offline; config, device list and policy also get a second
copy on main itself (``meta/``), because they are what is needed to find the other devices.
ZFS keeps metadata twice or thrice even when data has one copy (ditto blocks) for this reason.

Writes go to the primary first, then to every replica, each atomically. Reads take the primary
when it checks, else the latest intact replica, so a flipped byte or a lost disk never loses a
record while one good copy survives anywhere. :meth:`ReplicatedRecords.survey` tells every copy
that is missing, damaged or stale; :meth:`ReplicatedRecords.heal` rewrites them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from modelmanager.core.ids import BytesLike
from modelmanager.core.repo.records import RecordDamaged, record_kind, seal, unseal, written
from modelmanager.core.storage import BlobNotFound, BlobStore
from modelmanager.errors import IntegrityError

#: The folder of a device (and of main, for the bootstrap records) that holds metadata replicas.
META = "meta"
#: Records main keeps a second copy of: without them the devices cannot even be found.
BOOTSTRAP_KEYS = ("config.json", "devices.json", "policy.json")
LEFT_BEHIND = "left behind: its version was removed"


class Records(Protocol):
    """Where a repository's metadata records live (one store, or a primary and replicas)."""

    def read(self, key: str) -> dict[str, Any]:
        """The record under ``key``, checked; BlobNotFound when absent, RecordDamaged when no
        intact copy exists."""
        ...

    def write(self, key: str, doc: dict[str, Any], *, exclusive: bool = False) -> int:
        """Store ``doc`` sealed under ``key`` (``exclusive``: FileExistsError if present)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the record everywhere it is kept."""
        ...

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every (key, size) under ``prefix`` on any copy."""
        ...

    def exists(self, key: str) -> bool:
        """True when some copy of ``key`` exists (intact or not)."""
        ...

    def folders(self, prefix: str) -> set[str]:
        """The names of the folders right under ``prefix`` on any copy (one listing each)."""
        ...

    def on_primary(self, key: str) -> bool:
        """True when the primary copy of ``key`` exists (intact or not)."""
        ...

    def flush(self) -> None:
        """Make every write durable, names included."""
        ...


class SingleRecords:
    """Records kept once, in one store (a remote repository, or main before replicas exist)."""

    def __init__(self, blobs: BlobStore, *, legacy: bool = False) -> None:
        self.blobs = blobs
        self.legacy = legacy

    def read(self, key: str) -> dict[str, Any]:
        return unseal(self.blobs.get(key), key, legacy=self.legacy)

    def write(self, key: str, doc: dict[str, Any], *, exclusive: bool = False) -> int:
        return self.blobs.put(key, seal(doc), exclusive=exclusive)

    def delete(self, key: str) -> None:
        self.blobs.delete(key)
        self.blobs.flush()

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        return self.blobs.list(prefix)

    def exists(self, key: str) -> bool:
        return self.blobs.size(key) is not None

    def on_primary(self, key: str) -> bool:
        return self.exists(key)

    def folders(self, prefix: str) -> set[str]:
        return _folders(self.blobs, prefix)

    def flush(self) -> None:
        self.blobs.flush()


@dataclass(frozen=True)
class Copy:
    """One place a record may be kept: a name for messages, the store, and which keys it holds."""

    name: str
    where: str  # the folder, for messages
    store: BlobStore
    holds: Callable[[str], bool] = lambda key: True


@dataclass(frozen=True)
class CopyProblem:
    """One copy of one record that is missing, damaged or stale."""

    key: str
    copy: str  # the copy's name ("main", "main (second copy)", a device name)
    where: str  # the file
    what: str  # "missing", "damaged: …", "stale" (an older or other content)


class ReplicatedRecords:
    """Records on a primary store and its replicas: write everywhere, read the best copy."""

    def __init__(self, copies: Sequence[Copy], *, legacy: bool = False) -> None:
        self.copies = tuple(copies)
        self.legacy = legacy

    def _holding(self, key: str) -> list[Copy]:
        """The copies that keep ``key`` and are there now (the primary always; a replica
        whose device folder has gone, e.g. a disk unplugged while the repository is open, is
        left alone: writing it would make the folder on the disk below the mount point)."""
        return [c for i, c in enumerate(self.copies) if c.holds(key) and (i == 0 or _present(c))]

    def _load(self, copy: Copy, key: str) -> tuple[bytes | None, dict[str, Any] | None, str]:
        """(bytes, record, problem) of one copy: record None and a problem when not intact."""
        try:
            data = copy.store.get(key)
        except BlobNotFound:
            return None, None, "missing"
        except OSError as e:
            return None, None, f"unreadable ({e.strerror or e})"
        try:
            return data, unseal(data, key, legacy=self.legacy), ""
        except IntegrityError as e:
            why = e.message.removeprefix("damaged record").lstrip(": ")
            if why.startswith("(") and why.endswith(")"):
                why = why[1:-1]
            return data, None, f"damaged {record_kind(key)}: {why}"

    def best(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """The current content of ``key``: the primary's when intact, else the latest intact
        replica's; None when no copy is intact. The replicas are read only when the primary
        is not intact (a catalog rebuild reads every manifest: once, not once per device)."""
        holders = self._holding(key)
        if not holders:
            return None
        first = self._load(holders[0], key)
        if first[0] is not None and first[1] is not None:
            return first[0], first[1]
        return _choose([first, *(self._load(c, key) for c in holders[1:])])

    def read(self, key: str) -> dict[str, Any]:
        chosen = self.best(key)
        if chosen is not None:
            return chosen[1]
        holders = self._holding(key)
        for copy in holders:  # say why, naming the primary's file
            _data, _doc, problem = self._load(copy, key)
            if problem != "missing":
                raise RecordDamaged(
                    f"no intact copy of this record (here it is {problem})", path=copy.where
                )
        raise BlobNotFound("no such record", path=key)

    def write(self, key: str, doc: dict[str, Any], *, exclusive: bool = False) -> int:
        body = seal(doc)
        primary, *replicas = self._holding(key)
        size = primary.store.put(key, body, exclusive=exclusive)
        self._spread(key, body, replicas)
        return size

    def _spread(self, key: str, body: BytesLike, replicas: Sequence[Copy]) -> None:
        for copy in replicas:
            try:
                copy.store.put(key, body)
            except OSError:
                continue  # that copy is now stale: scrub reports it, repair rewrites it

    def delete(self, key: str) -> None:
        for copy in self._holding(key):
            try:
                copy.store.delete(key)
                copy.store.flush()
            except OSError:
                continue  # left behind: the removal record or tombstone still wins

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        seen: dict[str, int] = {}
        for copy in self.copies:
            if copy is not self.copies[0] and not _present(copy):
                continue
            try:
                for key, size in copy.store.list(prefix):
                    if copy.holds(key):
                        seen.setdefault(key, size)
            except OSError:
                continue
        return iter(sorted(seen.items()))

    def exists(self, key: str) -> bool:
        return any(c.store.size(key) is not None for c in self._holding(key))

    def on_primary(self, key: str) -> bool:
        return self.copies[0].store.size(key) is not None

    def folders(self, prefix: str) -> set[str]:
        found: set[str] = set()
        for copy in self.copies:
            if copy is not self.copies[0] and not _present(copy):
                continue
            try:
                found |= {n for n in _folders(copy.store, prefix) if copy.holds(f"{prefix}/{n}")}
            except OSError:
                continue
        return found

    def flush(self) -> None:
        for copy in self.copies:
            try:
                copy.store.flush()
            except OSError:
                continue

    # -- checking and healing ------------------------------------------------------------

    def survey(
        self, prefixes: Sequence[str], gone: Callable[[str], bool] = lambda key: False
    ) -> list[CopyProblem]:
        """Every copy of every record (under ``prefixes`` or a bootstrap key) that is not
        the current content: missing, damaged or stale; and every copy of a record that is
        ``gone`` (a removed version's manifest left on a device that was away)."""
        problems: list[CopyProblem] = []
        keys = [k for p in prefixes for k, _s in self.keys(p)]
        keys += [k for k in BOOTSTRAP_KEYS if self.exists(k)]
        for key in keys:
            if gone(key):
                problems += [
                    CopyProblem(key, c.name, _where(c, key), LEFT_BEHIND)
                    for c in self._holding(key)
                    if c.store.size(key) is not None
                ]
                continue
            holders = self._holding(key)
            loaded = [self._load(c, key) for c in holders]
            chosen = _choose(loaded)
            for copy, (data, _doc, problem) in zip(holders, loaded, strict=False):
                where = _where(copy, key)
                if chosen is None or problem:
                    problems.append(CopyProblem(key, copy.name, where, problem or "damaged"))
                elif data != chosen[0]:
                    problems.append(CopyProblem(key, copy.name, where, "stale"))
        return problems

    def heal(self, problems: Sequence[CopyProblem]) -> list[CopyProblem]:
        """Rewrite every copy ``problems`` names from the record's current content; returns
        the problems that could not be healed (no intact copy, or the write failed)."""
        left: list[CopyProblem] = []
        by_name = {c.name: c for i, c in enumerate(self.copies) if i == 0 or _present(c)}
        for p in problems:
            copy = by_name.get(p.copy)
            if p.what == LEFT_BEHIND and copy is not None:
                copy.store.delete(p.key)
                copy.store.flush()
                continue
            chosen = self.best(p.key)
            if chosen is None or copy is None:
                left.append(p)
                continue
            try:
                copy.store.put(p.key, chosen[0])
            except OSError:
                left.append(p)
        return left


def _choose(
    loaded: Sequence[tuple[bytes | None, dict[str, Any] | None, str]],
) -> tuple[bytes, dict[str, Any]] | None:
    """Of the copies read (primary first): the primary when intact, else the latest intact."""
    found: list[tuple[str, int, bytes, dict[str, Any]]] = []
    for i, (data, doc, _problem) in enumerate(loaded):
        if doc is None or data is None:
            continue
        if i == 0:
            return data, doc
        found.append((written(doc), -i, data, doc))
    if not found:
        return None
    _w, _i, data, doc = max(found, key=lambda f: (f[0], f[1]))
    return data, doc


def _folders(store: BlobStore, prefix: str) -> set[str]:
    """The folders right under ``prefix`` in ``store``: one directory listing for a local
    folder; for other stores, the first part of every key below it."""
    path = getattr(store, "path", None)
    if callable(path):
        try:
            with os.scandir(path(prefix)) as entries:
                return {e.name for e in entries if e.is_dir()}
        except (FileNotFoundError, NotADirectoryError):
            return set()
    start = len(prefix) + 1
    return {key[start:].split("/", 1)[0] for key, _size in store.list(prefix) if "/" in key[start:]}


def _present(copy: Copy) -> bool:
    """True when the folder holding ``copy``'s ``meta/`` (the device's own) is there."""
    return os.path.isdir(os.path.dirname(copy.where.rstrip("/")))


def _where(copy: Copy, key: str) -> str:
    return f"{copy.where.rstrip('/')}/{key}"
