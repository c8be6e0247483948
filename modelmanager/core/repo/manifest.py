"""Version manifests: the immutable record of one version's files, chunks and tensors.

A manifest is JSON (see docs/repository-format.md). It is validated in full on every load,
because it may come from another machine: paths must be safe, chunk lengths must add up to
file sizes, tensor ranges must lie inside their file.
"""

from __future__ import annotations

import json
import math
import operator
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress
from typing import Any, NamedTuple, cast, overload

from modelmanager.core.formats import rules
from modelmanager.core.formats.base import DtypeHints, TensorEntry
from modelmanager.core.formats.jsonstrict import loads_strict
from modelmanager.core.gcpause import paused_gc
from modelmanager.core.ids import DIGEST_HEX_LEN, content_id, is_content_id
from modelmanager.core.repo.names import check_model_name, check_relpath
from modelmanager.errors import IntegrityError, RepositoryError, UserError

MANIFEST_FORMAT = 1
#: A manifest larger than this is refused before parsing (a 100k-tensor model is ~15 MB).
MAX_MANIFEST_BYTES = 256 * 1024 * 1024

MetaValue = Any  # JSON scalars and lists of them


@dataclass(frozen=True)
class ChunkRef:
    """One chunk of a file, in file order: its id and its plain length."""

    id: str
    length: int


@dataclass(frozen=True)
class TensorRecord(TensorEntry):
    """A tensor as recorded in a manifest: the format's entry plus a digest of its bytes."""

    digest: str = ""


class Columns(NamedTuple):
    """A file's tensors field by field, in file order (one tuple per field)."""

    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    digests: tuple[str, ...]


#: Held while a file's records are made from its columns, so every thread sees one set of
#: records (code such as services/lineage.py keys tensors by ``id``).
_MAKING = threading.Lock()


class TensorColumns(Sequence[TensorRecord]):
    """A file's tensors: a tuple of :class:`TensorRecord` to every reader, held as columns.

    A manifest read from JSON keeps its checked fields column by column and makes the records
    the first time something walks them (then keeps them: the same objects every time). Making
    100,000 records took 0.1 s of a first selection that needs none of them: the window's
    Overview, Tensors tab and stored sizes read the columns (:attr:`columns`). Equal to a
    tuple of the same records, as the tuple it replaces was."""

    __slots__ = ("_columns", "_records")

    def __init__(self, records: Iterable[TensorRecord] = ()) -> None:
        self._records: tuple[TensorRecord, ...] | None = tuple(records)
        self._columns: Columns | None = None

    @classmethod
    def from_columns(cls, *columns: tuple[Any, ...]) -> TensorColumns:
        """Tensors given as the six :class:`Columns` (already checked); no record is made."""
        made = cls.__new__(cls)
        made._records, made._columns = None, Columns(*columns)
        return made

    @property
    def columns(self) -> Columns:
        """Every field of every tensor, one tuple per field (no record made)."""
        found = self._columns
        if found is None:
            records = cast(tuple[TensorRecord, ...], self._records)
            get = operator.attrgetter
            found = self._columns = Columns(*(tuple(map(get(name), records))
                                              for name in ("name", "dtype", "shape", "start",
                                                           "end", "digest")))  # fmt: skip
        return found

    def records(self) -> tuple[TensorRecord, ...]:
        """The tensors as records, made once (under a lock: one set of objects)."""
        found = self._records
        if found is None:
            with _MAKING:
                found = self._records
                if found is None:
                    with paused_gc():  # 100,000 acyclic records: see core/gcpause.py
                        found = self._records = tuple(map(TensorRecord, *self.columns))
        return found

    def __len__(self) -> int:
        found = self._records
        return len(found) if found is not None else len(self.columns.names)

    @overload
    def __getitem__(self, i: int) -> TensorRecord: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[TensorRecord, ...]: ...

    def __getitem__(self, i: int | slice) -> TensorRecord | tuple[TensorRecord, ...]:
        """A record (made for the asking when the records are not made: an equal one)."""
        found = self._records
        if found is not None:
            return found[i]
        c = self.columns
        if isinstance(i, slice):
            return tuple(map(TensorRecord, *(column[i] for column in c)))
        return TensorRecord(c.names[i], c.dtypes[i], c.shapes[i], c.starts[i], c.ends[i],
                            c.digests[i])  # fmt: skip

    def __iter__(self) -> Iterator[TensorRecord]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if isinstance(other, TensorColumns):
            if self._records is None or other._records is None:
                return self.columns == other.columns
            return self._records == other._records
        if isinstance(other, tuple):
            return self.records() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.records())

    def __repr__(self) -> str:
        return f"TensorColumns({self.records()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return TensorColumns.from_columns, tuple(self.columns)


@dataclass(frozen=True)
class FileRecord:
    """One file of a version: relative path, size, format, chunks covering it, tensors in it
    (any sequence of records given is held as :class:`TensorColumns`)."""

    path: str
    size: int
    format: str
    chunks: tuple[ChunkRef, ...]
    tensors: Sequence[TensorRecord] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if type(self.tensors) is not TensorColumns:
            object.__setattr__(self, "tensors", TensorColumns(self.tensors))

    @property
    def tensor_columns(self) -> Columns:
        """The file's tensors field by field (what a walk over 100,000 tensors should read)."""
        return cast(TensorColumns, self.tensors).columns

    def dtype_hints(self) -> DtypeHints:
        """The dtype of the tensor each byte range of the file lies in (for a codec's choice),
        from the columns."""
        c = self.tensor_columns
        return DtypeHints.of_ranges(c.starts, c.ends, c.dtypes)


@dataclass(frozen=True)
class Manifest:
    """One immutable version of a model."""

    model: str
    seq: int
    parent: int | None
    created: str
    message: str
    metadata: dict[str, MetaValue]
    files: tuple[FileRecord, ...]

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.seq}"

    @property
    def logical_bytes(self) -> int:
        """Total size of the version's files as a user sees them."""
        return sum(f.size for f in self.files)

    @property
    def tensors(self) -> list[tuple[FileRecord, TensorRecord]]:
        """Every tensor with the file it lives in."""
        return [(f, t) for f in self.files for t in f.tensors]

    @property
    def parameters(self) -> int:
        """Number of tensor elements across all files (from the columns: no record made)."""
        return sum(sum(map(math.prod, f.tensor_columns.shapes)) for f in self.files)

    def dtype_bytes(self) -> dict[str, int]:
        """Bytes of tensor data per dtype (the dtype mix), in the order dtypes first appear;
        summed column by column, one pass per dtype (a file has few)."""
        mix: Counter[str] = Counter()
        for f in self.files:
            c = f.tensor_columns
            kinds = dict.fromkeys(c.dtypes)
            for dtype in kinds:
                if len(kinds) == 1:
                    mix[dtype] += sum(c.ends) - sum(c.starts)
                else:
                    mask = list(map(dtype.__eq__, c.dtypes))
                    mix[dtype] += sum(compress(c.ends, mask)) - sum(compress(c.starts, mask))
        return dict(mix)

    def chunk_ids(self) -> set[str]:
        """Every chunk the version needs."""
        return {c.id for f in self.files for c in f.chunks}

    def to_json(self) -> dict[str, Any]:
        """The JSON document for this manifest (compact arrays for chunks and tensors)."""
        return {
            "format": MANIFEST_FORMAT,
            "model": self.model,
            "version": self.seq,
            "parent": self.parent,
            "created": self.created,
            "message": self.message,
            "metadata": self.metadata,
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "format": f.format,
                    "metadata": f.metadata,
                    "chunks": [[c.id, c.length] for c in f.chunks],
                    "tensors": [
                        [name, dtype, list(shape), start, end, digest]
                        for name, dtype, shape, start, end, digest in zip(
                            *f.tensor_columns, strict=True
                        )
                    ],
                }
                for f in self.files
            ],
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> Manifest:
        """Parse and fully validate a manifest; IntegrityError naming ``source`` otherwise."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise IntegrityError(f"manifest is {len(data)} bytes, over the limit", path=source)
        try:
            with paused_gc():  # a million acyclic objects: see core/gcpause.py
                return _parse(loads_strict(data), source)
        except RepositoryError:
            raise
        except (ValueError, TypeError, KeyError, UserError) as e:
            raise IntegrityError(f"invalid manifest ({e})", path=source) from None

    @classmethod
    def from_doc(cls, doc: dict[str, Any], source: str) -> Manifest:
        """Validate a manifest record already read (and checked) as JSON."""
        try:
            with paused_gc():
                return _parse(doc, source)
        except RepositoryError:
            raise
        except (ValueError, TypeError, KeyError, UserError) as e:
            raise IntegrityError(f"invalid manifest ({e})", path=source) from None


class ManifestCache:
    """Manifests already parsed and checked, by where they were read and the hash of the exact
    bytes read: the same bytes make the same manifest, so a version selected again costs a
    read and a hash (about 20 ms for 100,000 tensors) instead of a parse and a check (0.8 s).
    Bounded: the least recently used go once the manifests held pass ``max_tensors`` tensors
    (about 0.5 KB each) or ``max_entries`` manifests. Safe to share between threads."""

    def __init__(self, max_tensors: int = 400_000, max_entries: int = 64) -> None:
        self.max_tensors, self.max_entries = max_tensors, max_entries
        self._lock = threading.Lock()
        self._held: OrderedDict[tuple[str, str], tuple[Manifest, int]] = OrderedDict()
        self._tensors = 0

    @staticmethod
    def digest(data: bytes) -> str:
        """The hash the cache knows ``data``'s manifest by."""
        return content_id(data)

    def get(self, place: str, digest: str) -> Manifest | None:
        """The manifest read at ``place`` from bytes of hash ``digest``, if still held."""
        with self._lock:
            found = self._held.get((place, digest))
            if found is None:
                return None
            self._held.move_to_end((place, digest))
            return found[0]

    def put(self, place: str, digest: str, manifest: Manifest) -> None:
        """Hold ``manifest``, read at ``place`` from bytes of hash ``digest``."""
        size = sum(len(f.tensors) for f in manifest.files) + 1
        if size > self.max_tensors:
            return  # one manifest over the bound is not held at all
        with self._lock:
            old = self._held.pop((place, digest), None)
            if old is not None:
                self._tensors -= old[1]
            self._held[(place, digest)] = (manifest, size)
            self._tensors += size
            while self._tensors > self.max_tensors or len(self._held) > self.max_entries:
                _key, (_m, n) = self._held.popitem(last=False)
                self._tensors -= n

    def clear(self) -> None:
        """Hold nothing (a benchmark's first read)."""
        with self._lock:
            self._held.clear()
            self._tensors = 0

    def __len__(self) -> int:
        return len(self._held)


# The rules an import checks every parser's index with (core/formats/rules.py): one set of
# rules, so nothing an import stores can fail them when read back.
_int = rules.count
_str_map = rules.str_map


def _fast_chunks(entries: Any, size: int) -> tuple[ChunkRef, ...] | None:
    """The chunks when every entry is sound, checked column by column in C loops; None when
    any is not (or has an unusual shape), so :func:`_file` finds and names the problem."""
    if type(entries) is not list or not set(map(type, entries)) <= {list}:
        return None
    if entries and set(map(len, entries)) != {2}:
        return None
    ids = [e[0] for e in entries]
    lengths = [e[1] for e in entries]
    if not set(map(type, ids)) <= {str} or not set(map(type, lengths)) <= {int}:
        return None
    if not all(map(is_content_id, ids)) or (lengths and min(lengths) < 1):
        return None
    if sum(lengths) != size:
        return None
    return tuple(map(ChunkRef, ids, lengths))


def _fast_tensors(entries: Any, size: int) -> TensorColumns | None:
    """The tensors when every entry passes every rule :func:`_file` applies one by one (UTF-8
    name, known dtype spelling, shape of sizes >= 0, 0 <= start <= end <= file size, digest
    length), checked column by column in C loops; None when any does not (or an entry has an
    unusual shape), so the per-entry loop finds it and names it exactly as before. The checked
    columns are kept as they are: no record is made until one is read."""
    if type(entries) is not list or not set(map(type, entries)) <= {list}:
        return None
    if not entries:
        return TensorColumns()
    if set(map(len, entries)) != {6}:
        return None
    names, dtypes, shapes, starts, ends, digests = zip(*entries, strict=True)
    if not (set(map(type, names)) | set(map(type, dtypes)) | set(map(type, digests))) <= {str}:
        return None
    if set(map(len, digests)) != {DIGEST_HEX_LEN} or not set(map(type, shapes)) <= {list}:
        return None
    if not (set(map(type, starts)) | set(map(type, ends))) <= {int}:
        return None
    if min(starts) < 0 or max(ends) > size or not all(map(operator.le, starts, ends)):
        return None
    dims = list(chain.from_iterable(shapes))
    if dims and (not set(map(type, dims)) <= {int} or min(dims) < 0):
        return None
    try:
        "".join(names).encode("utf-8")  # a lone surrogate fails here, as in rules.text
        for dtype in set(dtypes):
            rules.dtype(dtype, "")
    except (UnicodeEncodeError, ValueError):
        return None
    shapes = tuple(map(tuple, shapes))
    return TensorColumns.from_columns(names, dtypes, shapes, starts, ends, digests)


def _file(doc: Any) -> FileRecord:
    if not isinstance(doc, dict):
        raise ValueError("a file entry is not an object")
    path = check_relpath(doc["path"])
    size = _int(doc["size"], f"size of {path}")
    fast = _fast_chunks(doc["chunks"], size)
    chunk_refs = fast if fast is not None else _checked_chunks(doc["chunks"], path, size)
    fast_tensors = _fast_tensors(doc["tensors"], size)
    tensors = (
        fast_tensors if fast_tensors is not None else _checked_tensors(doc["tensors"], path, size)
    )
    fmt = doc["format"]
    if not isinstance(fmt, str):
        raise ValueError(f"bad format of {path}")
    return FileRecord(path, size, fmt, chunk_refs, tensors, _str_map(doc["metadata"], "metadata"))


def _checked_chunks(entries: Any, path: str, size: int) -> tuple[ChunkRef, ...]:
    """The chunks checked one by one: the first bad one is named (the slow, exact path)."""
    chunks = []
    total = 0
    for entry in entries:
        cid, length = entry
        if not isinstance(cid, str) or not is_content_id(cid):
            raise ValueError(f"bad chunk id in {path}")
        chunks.append(ChunkRef(cid, _int(length, f"chunk length in {path}", 1)))
        total += length
    if total != size:
        raise ValueError(f"chunks of {path} add up to {total} bytes, the file has {size}")
    return tuple(chunks)


def _checked_tensors(entries: Any, path: str, size: int) -> tuple[TensorRecord, ...]:
    """The tensors checked one by one: the first bad one is named (the slow, exact path)."""
    tensors = []
    for entry in entries:
        name, dtype, shape, start, end, digest = entry
        if not isinstance(digest, str) or len(digest) != DIGEST_HEX_LEN:
            raise ValueError(f"bad tensor entry in {path}")
        try:
            fields = rules.tensor_fields(name, dtype, shape, start, end, size)
        except ValueError as e:
            raise ValueError(f"{e}, in {path}") from None
        tensors.append(TensorRecord(*fields, digest))
    return tuple(tensors)


def _parse(doc: Any, source: str) -> Manifest:
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    fmt = doc.get("format")
    if fmt != MANIFEST_FORMAT:
        raise RepositoryError(
            f"manifest format {fmt!r} is not one this ModelManager reads "
            f"({MANIFEST_FORMAT}); upgrade ModelManager",
            path=source,
        )
    model = doc["model"]
    if not isinstance(model, str):
        raise ValueError("model must be a string")
    check_model_name(model)
    seq = _int(doc["version"], "version", 1)
    parent = doc["parent"]
    if parent is not None and not 1 <= _int(parent, "parent", 1) < seq:
        raise ValueError("parent must be an earlier version")
    created, message, metadata = doc["created"], doc["message"], doc["metadata"]
    if not isinstance(created, str) or not isinstance(message, str):
        raise ValueError("created and message must be strings")
    if not isinstance(metadata, dict):
        raise ValueError("metadata must be an object")
    files = tuple(_file(f) for f in doc["files"])
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise ValueError("a file path appears twice")
    return Manifest(model, seq, parent, created, message, metadata, files)
