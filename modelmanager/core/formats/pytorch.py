"""PyTorch checkpoints (.pt, .pth, .bin, .ckpt), read without torch and without running code.

Both layouts torch.save writes are understood:
- zip (torch >= 1.6): ``<prefix>/data.pkl`` plus one stored (uncompressed) zip entry per
  storage, ``<prefix>/data/<key>``;
- legacy: consecutive pickles (magic number, protocol, system info, the object, the storage
  keys), then each storage's raw bytes after an 8-byte element count.

The pickles are read by a restricted unpickler. ``find_class`` answers only from an allow-list,
and every answer is one of *our* stub constructors: a tensor record, a storage type, a plain
container. It never returns a real callable named by the file. Any other global (``os.system``,
``builtins.eval``, an unknown class) is refused with a FormatError that names it, before
anything it names could run. RELIABILITY.md rule 9: allow-list or nothing.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, ClassVar, NoReturn

from modelmanager.core.formats.base import (
    FileIndex,
    NotThisFormat,
    RefusedContent,
    TensorEntry,
    ZipMember,
    open_zip,
    read_member,
    zip_members,
)
from modelmanager.errors import FormatError

SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
#: Bytes of pickle read at most (inflated). torch.save writes ~100 bytes per tensor.
MAX_PICKLE = 32 * 1024 * 1024
#: Opcodes run at most (bounds time): torch.save writes 30 per tensor.
MAX_OPS = 7_000_000
#: Memory the objects a pickle builds may take, estimated per opcode (see ``_COSTS``):
#: torch.save's pickles cost ~850 bytes per tensor, so about 130,000 tensors fit.
MAX_OBJECTS = 112 << 20
#: Memo entries at most (torch.save writes 8 per tensor).
MAX_MEMO = 2_000_000
#: Nodes of all dict keys and set members together (each is hashed, tuples recursively).
MAX_KEY_NODES = 1_000_000
#: Tensors found at most (the same tensor under two names counts twice).
MAX_TENSORS = 200_000
#: Characters of a tensor name at most (it is built from the keys leading to it).
MAX_NAME = 4096
MAX_DEPTH = 64
MAX_DIMS = 64
#: Sizes, strides and offsets above this are refused (no real tensor has 2**63 elements).
MAX_INT = 1 << 63
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

#: Storage type -> (our dtype spelling, element size).
STORAGE_TYPES = {
    "FloatStorage": ("F32", 4), "DoubleStorage": ("F64", 8), "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1), "ComplexFloatStorage": ("C64", 8),
    "ComplexDoubleStorage": ("C128", 16),
}  # fmt: skip
ITEMSIZES = dict(STORAGE_TYPES.values())


class _Refused(pickle.UnpicklingError):
    """Content the unpickler will not build; its message is the cause shown to the user."""


class _Stub:
    """Base of every object the unpickler builds for the allow-list: no ``__dict__``, no BUILD.

    pickle's BUILD calls ``__setstate__`` when there is one, else writes straight into
    ``__dict__`` (bypassing ``frozen`` dataclasses). Here there is no ``__dict__``, every
    attribute is read-only, and ``__setstate__`` refuses, so a pickle cannot change a stub.
    """

    __slots__ = ()

    def __setstate__(self, state: object) -> NoReturn:
        raise _Refused(f"refused: a BUILD opcode tries to change a {type(self).__name__}")

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise _Refused(f"refused: a pickle tries to set {name} on a {type(self).__name__}")

    def __delattr__(self, name: str) -> NoReturn:
        raise _Refused(f"refused: a pickle tries to delete {name} of a {type(self).__name__}")

    def _init(self, **fields: object) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)


class StorageType(_Stub):
    """What ``torch.FloatStorage`` becomes: an opaque token, its dtype looked up at use time."""

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        self._init(name=name)


class StorageRef(_Stub):
    """A storage the pickle refers to by key (its bytes live elsewhere in the file)."""

    __slots__ = ("key", "numel", "stype", "view_offset")
    key: str
    stype: str
    numel: int
    view_offset: int  # legacy views: element offset into the root storage

    def __init__(self, key: str, stype: str, numel: int, view_offset: int = 0) -> None:
        self._init(key=key, stype=stype, numel=numel, view_offset=view_offset)

    @property
    def dtype(self) -> str:
        return STORAGE_TYPES[self.stype][0]

    @property
    def itemsize(self) -> int:
        return STORAGE_TYPES[self.stype][1]


class TensorRef(_Stub):
    """A tensor rebuilt as a record: storage, element offset, shape, strides."""

    __slots__ = ("offset", "shape", "storage", "stride")
    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def __init__(
        self, storage: StorageRef, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self._init(storage=storage, offset=offset, shape=shape, stride=stride)


class _Call(_Stub):
    """One allowed global: our own function behind a stub that a pickle cannot change."""

    __slots__ = ("fn",)
    fn: Callable[..., Any]

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._init(fn=fn)

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


class _StateDict(dict):  # type: ignore[type-arg]
    """What ``collections.OrderedDict`` builds: a plain dict that ignores BUILD state.

    torch state dicts carry a ``_metadata`` attribute set by BUILD; it is not needed, so it
    is dropped instead of stored.
    """

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        return None


def _int(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value < MAX_INT:
        raise _Refused(f"{what} is not an integer between 0 and 2**63")
    return value


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or len(values) > MAX_DIMS:
        raise _Refused(f"{what} is not a tuple of at most {MAX_DIMS} integers")
    return tuple(_int(v, what) for v in values)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise _Refused("a tensor without a storage")
    shape, steps = _ints(size, "a tensor's shape"), _ints(stride, "a tensor's stride")
    if len(shape) != len(steps):
        raise _Refused(f"a tensor with {len(shape)} sizes but {len(steps)} strides")
    return TensorRef(storage, storage.view_offset + _int(offset, "a tensor's offset"), shape,
                     steps)  # fmt: skip


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


def _size(*args: Any) -> tuple[int, ...]:
    one = len(args) == 1 and isinstance(args[0], (list, tuple))
    return _ints(args[0] if one else args, "torch.Size")


def _device(*args: Any) -> str:
    if not 1 <= len(args) <= 2 or not all(type(a) in (str, int) for a in args):
        raise _Refused("torch.device takes a type and an index")
    if type(args[0]) is not str or len(args[0]) > 64:
        raise _Refused("torch.device with a malformed type")
    return ":".join(str(a) for a in args)


def _ordered_dict(*args: Any) -> _StateDict:
    """``OrderedDict()``, or from a list of pairs (Python 2 pickles); keys checked first."""
    if not args:
        return _StateDict()
    if len(args) != 1 or not isinstance(args[0], (list, tuple)):
        raise _Refused("OrderedDict built from something other than a list of pairs")
    pairs = args[0]
    if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise _Refused("OrderedDict built from something other than a list of pairs")
    for key, _ in pairs:
        _Active.current().check_key(key)
    return _StateDict((k, v) for k, v in pairs)


_ALLOWED: dict[str, _Stub] = {
    "collections.OrderedDict": _Call(_ordered_dict),
    "torch._utils._rebuild_tensor": _Call(_rebuild_tensor),
    "torch._utils._rebuild_tensor_v2": _Call(_rebuild_tensor),
    "torch._utils._rebuild_parameter": _Call(_rebuild_parameter),
    "torch._utils._rebuild_parameter_with_state": _Call(_rebuild_parameter),
    "torch.Size": _Call(_size),
    "torch.device": _Call(_device),
    **{f"torch.{name}": StorageType(name) for name in STORAGE_TYPES},
}


def _shown(text: str, limit: int = 120) -> str:
    """``text`` for a one-line message: control characters and lone surrogates escaped."""
    return repr(text[:limit])[1:-1] + ("..." if len(text) > limit else "")


_PRIMITIVE_KEYS = (str, bytes, int, float, bool, type(None))


class _Budget:
    """What one file's pickles may still cost: opcodes run and key nodes hashed."""

    def __init__(self) -> None:
        self.ops = 0
        self.cost = 0
        self.key_nodes = 0


class _Active:
    """The unpickler running now (stub functions check keys against its budget)."""

    stack: ClassVar[list[_RestrictedUnpickler]] = []

    @classmethod
    def current(cls) -> _RestrictedUnpickler:
        return cls.stack[-1]


def _counted(op: Callable[[Any], None], cost: int) -> Callable[[_RestrictedUnpickler], None]:
    """``op`` charged to the budget first: one opcode and ``cost`` bytes of objects."""

    def run(self: _RestrictedUnpickler) -> None:
        budget = self.budget
        budget.ops += 1
        budget.cost += cost
        if budget.ops > MAX_OPS or budget.cost > MAX_OBJECTS:
            raise _Refused(
                f"the pickle builds more than {MAX_OBJECTS >> 20} MiB of objects or runs more "
                f"than {MAX_OPS} opcodes (at opcode {budget.ops}), over the limit"
            )
        op(self)

    return run


#: What an opcode may cost in memory, in bytes (a new object and its stack slot: 64).
_OBJECT = 64
_COSTS = {
    **dict.fromkeys(b"(.\x80\x9501ebsua", 8),  # MARK STOP PROTO FRAME POP POP_MARK, fills
    **dict.fromkeys(b"hjg2", 16),  # memo references and DUP (a stack slot, copied by pop_mark)
    **dict.fromkeys(b"qrp\x94", 16),  # memo entries (one slot of a list)
    **dict.fromkeys(b"NK\x88\x89)", 8),  # None, small ints, True, False, () are shared
}


class _Memo(list):  # type: ignore[type-arg]
    """The memo as a dense list: picklers number entries 0, 1, 2...; others are refused."""

    __slots__ = ()

    def __setitem__(self, index: Any, value: Any) -> None:
        if index == len(self):
            if index >= MAX_MEMO:
                raise _Refused(f"more than {MAX_MEMO} memo entries, over the limit")
            self.append(value)
        elif type(index) is int and 0 <= index < len(self):
            super().__setitem__(index, value)
        else:
            raise _Refused(f"a memo index out of order ({index} with {len(self)} entries)")

    def __getitem__(self, index: Any) -> Any:
        if type(index) is not int or index < 0:
            raise KeyError(index)
        return super().__getitem__(index)


class _RestrictedUnpickler(pickle._Unpickler):
    """Builds only our stubs and plain containers, within a budget; refuses all else by name.

    It is the pure-Python unpickler (each opcode can be checked), with:
    - ``find_class`` answering only from the allow-list, with stubs a pickle cannot change;
    - every opcode counted (MAX_OPS), the memo bounded (MAX_MEMO);
    - dict keys and set members checked before they are hashed: primitives, or tuples of a
      bounded number of nodes in total (a tuple of 2 references to a tuple of 2 references...
      has 2**40 leaves in 600 bytes, and hashing or printing it never ends);
    - persistent ids accepted only in the exact shape torch writes.
    """

    stack: list[Any]  # set by load(): the pure-Python unpickler's own stacks
    metastack: list[list[Any]]
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = {
        code: _counted(op, _COSTS.get(code, _OBJECT))
        for code, op in pickle._Unpickler.dispatch.items()
    }

    def __init__(self, file: IO[bytes], path: Path, storages: dict[str, StorageRef],
                 budget: _Budget) -> None:  # fmt: skip
        super().__init__(file)
        self.memo: Any = _Memo()
        self.path = path
        self.storages = storages
        self.budget = budget

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in _ALLOWED:
            return _ALLOWED[key]
        raise RefusedContent(
            f"refused to load: the pickle calls {_shown(key)}, which is not a tensor or a plain "
            "container (no code from a checkpoint is ever run)",
            path=self.path,
        )

    def check_key(self, key: Any) -> None:
        """Refuse a dict key or set member whose hashing could cost more than the budget."""
        if isinstance(key, (*_PRIMITIVE_KEYS, _Stub)):
            self._spend(1)
            return
        if type(key) not in (tuple, frozenset):
            return  # unhashable: Python refuses it at once
        todo: list[Any] = [key]
        while todo:
            item = todo.pop()
            self._spend(1)
            if type(item) in (tuple, frozenset):
                todo.extend(item)

    def _spend(self, nodes: int) -> None:
        self.budget.key_nodes += nodes
        if self.budget.key_nodes > MAX_KEY_NODES:
            raise _Refused(f"dict keys with more than {MAX_KEY_NODES} parts in all, over the "
                           "limit")  # fmt: skip

    def persistent_load(self, pid: Any) -> Any:
        """A storage reference: ('storage', StorageType, key, location, numel[, view])."""
        if type(pid) is not tuple or len(pid) not in (5, 6) or pid[0] != "storage":
            raise _Refused("refused: an unknown persistent id (not a torch storage)")
        _tag, stype, key, location, numel, *view = pid
        if not isinstance(stype, StorageType) or type(key) is not str or len(key) > 256:
            raise _Refused("refused: a malformed storage in a persistent id")
        if type(location) is not str or len(location) > 64:
            raise _Refused("refused: a storage location in a persistent id is not a short text")
        numel = _int(numel, "a storage's element count")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = StorageRef(key, stype.name, numel)
        elif root.stype != stype.name:
            raise _Refused(f"refused: storage {_shown(key)!r} is used with two types")
        if view and view[0] is not None:  # legacy view: (view key, element offset, size)
            if type(view[0]) is not tuple or len(view[0]) != 3:
                raise _Refused("refused: a malformed storage view in a persistent id")
            offset = _int(view[0][1], "a storage view's offset")
            return StorageRef(key, root.stype, root.numel, offset)
        return root


def _guarded(op: Callable[[Any], None], check: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(self: _RestrictedUnpickler) -> None:
        check(self)
        op(self)

    return run


def _keys_on_stack(pairs: bool) -> Callable[[_RestrictedUnpickler], None]:
    def check(self: _RestrictedUnpickler) -> None:
        stack = self.stack
        if not self.metastack:
            return
        items = stack  # after MARK: the items above the mark are the current stack
        for key in items[0::2] if pairs else items:
            self.check_key(key)

    return check


def _setitem_key(self: _RestrictedUnpickler) -> None:
    if len(self.stack) >= 2:
        self.check_key(self.stack[-2])


_OPS = _RestrictedUnpickler.dispatch
for _code, _check in [
    (pickle.SETITEM, _setitem_key), (pickle.SETITEMS, _keys_on_stack(pairs=True)),
    (pickle.DICT, _keys_on_stack(pairs=True)), (pickle.ADDITEMS, _keys_on_stack(pairs=False)),
    (pickle.FROZENSET, _keys_on_stack(pairs=False)),
]:  # fmt: skip
    _OPS[_code[0]] = _guarded(_OPS[_code[0]], _check)


_PICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
    AttributeError, struct.error, RecursionError, MemoryError, OverflowError,
    UnicodeError,
)  # fmt: skip


def _unpickle(data: IO[bytes], path: Path, storages: dict[str, StorageRef],
              budget: _Budget) -> Any:  # fmt: skip
    """One pickle from ``data``, built by the restricted unpickler; FormatError otherwise."""
    unpickler = _RestrictedUnpickler(data, path, storages, budget)
    _Active.stack.append(unpickler)
    try:
        return unpickler.load()
    except FormatError:
        raise
    except _Refused as e:
        raise FormatError(str(e), path=path) from None
    except _PICKLE_ERRORS as e:
        raise FormatError(f"damaged pickle ({type(e).__name__}: {str(e)[:200]})",
                          path=path) from None  # fmt: skip
    finally:
        _Active.stack.pop()
        unpickler.memo.clear()


def _part(key: Any) -> str | None:
    """A key as part of a tensor name: strings and small integers; None for anything else."""
    if type(key) is str:
        return key
    if type(key) is int and -MAX_INT < key < MAX_INT:
        return str(key)
    return None


def _walk(obj: Any, path: Path) -> list[tuple[str, TensorRef]]:
    """Every tensor in nested dicts, lists and tuples, named with dots ('state_dict.fc.weight').

    Only containers and tensors are visited, each container once; names are built only on the
    way to a tensor and bounded in length; the tensors found are capped.
    """
    found: list[tuple[str, TensorRef]] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [("", obj, 0)]
    while stack:
        prefix, value, depth = stack.pop()
        if isinstance(value, TensorRef):
            if len(found) >= MAX_TENSORS:
                raise FormatError(f"more than {MAX_TENSORS} tensors, over the limit", path=path)
            name = prefix or "tensor"
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise FormatError(f"tensor name {_shown(name)} is not encodable as UTF-8",
                                  path=path) from None  # fmt: skip
            found.append((name, value))
            continue
        if id(value) in seen:
            continue
        if depth > MAX_DEPTH:
            raise FormatError(f"objects nested more than {MAX_DEPTH} deep", path=path)
        seen.add(id(value))
        items: Iterator[tuple[Any, Any]] = (
            iter(value.items()) if isinstance(value, dict) else enumerate(value)
        )
        for key, child in items:
            if not isinstance(child, (TensorRef, dict, list, tuple)):
                continue
            part = _part(key)
            if part is None:
                kind = type(key).__name__
                raise FormatError(f"a tensor or container under a key of type {kind}: it "
                                  "cannot be named", path=path)  # fmt: skip
            if len(prefix) + len(part) >= MAX_NAME:
                raise FormatError(f"a tensor name is over {MAX_NAME} characters", path=path)
            stack.append((f"{prefix}.{part}" if prefix else part, child, depth + 1))
    found.sort(key=lambda item: item[0])
    return found


def _entries(
    tensors: list[tuple[str, TensorRef]], starts: dict[str, tuple[int, int]], path: Path,
    size: int,
) -> tuple[TensorEntry, ...]:  # fmt: skip
    """Each tensor's byte range in the file, every field checked (see ``_checked``)."""
    out = []
    names: set[str] = set()
    for name, t in tensors:
        if name in names:
            raise FormatError(f"tensor name {_shown(name)!r} appears twice", path=path)
        names.add(name)
        if t.storage.key not in starts:
            raise FormatError(f"tensor {_shown(name)!r} uses storage {_shown(t.storage.key)!r}, "
                              "which is absent", path=path)  # fmt: skip
        base, nbytes = starts[t.storage.key]
        out.append(_checked(name, t, base, nbytes, size, path))
    return tuple(out)


def _checked(name: str, t: TensorRef, base: int, nbytes: int, size: int, path: Path) -> TensorEntry:
    """A tensor's entry, validated: known dtype with a positive item size, sizes >= 0, its bytes
    inside its storage and the file, and a contiguous tensor exactly numel * itemsize long."""
    shown = f"tensor {_shown(name)!r}"
    if t.storage.stype not in STORAGE_TYPES:
        raise FormatError(f"{shown} has an unknown storage type", path=path)
    dtype, itemsize = STORAGE_TYPES[t.storage.stype]
    shape, stride, offset = t.shape, t.stride, t.offset
    if not (
        type(shape) is tuple
        and type(stride) is tuple
        and len(shape) == len(stride)
        and all(type(d) is int and 0 <= d < MAX_INT for d in (*shape, *stride, offset))
    ):
        raise FormatError(f"{shown} has a negative size, stride or offset", path=path)  # fmt: skip
    numel = math.prod(shape)
    span = 0 if numel == 0 else 1 + sum((d - 1) * s for d, s in zip(shape, stride, strict=True))
    start = base + offset * itemsize
    end = start + span * itemsize
    if not 0 <= base <= start <= end <= base + nbytes <= size:
        raise FormatError(f"{shown} runs past the end of its storage", path=path)
    contiguous = all(
        s == math.prod(shape[k + 1 :]) for k, (d, s) in enumerate(zip(shape, stride, strict=True))
        if d > 1
    )  # fmt: skip
    if contiguous and end - start != numel * itemsize:
        raise FormatError(f"{shown} needs {numel * itemsize} bytes but spans {end - start}",
                          path=path)  # fmt: skip
    return TensorEntry(name, dtype, shape, start, end)


def _check_member_name(name: str, path: Path) -> None:
    if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
        raise FormatError(f"zip member name {name!r} points outside the archive", path=path)


def _pickle_bytes(archive: zipfile.ZipFile, member: ZipMember, path: Path) -> bytes:
    """data.pkl, inflated and CRC-checked, refused above MAX_PICKLE whatever its header says."""
    if member.info.file_size > MAX_PICKLE:
        raise FormatError(f"data.pkl is {member.info.file_size} bytes, over the limit of "
                          f"{MAX_PICKLE}", path=path)  # fmt: skip
    data = read_member(archive, member, MAX_PICKLE + 1, path)
    if len(data) > MAX_PICKLE:
        raise FormatError(f"data.pkl inflates past {MAX_PICKLE} bytes, over the limit", path=path)
    return data


def read_zip(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """A torch.save zip: data.pkl unpickled by the restricted unpickler, storages located.

    Storage members are not read: their bytes are stored as they are, so a storage whose CRC
    does not match comes back byte for byte as it was (torch decides what it means). data.pkl
    is read to its end and refused on a bad CRC.
    """
    pickled, starts, regions = _zip_layout(f, size, path)
    storages: dict[str, StorageRef] = {}
    obj = _unpickle(io.BytesIO(pickled), path, storages, _Budget())
    del pickled
    for key, ref in storages.items():
        if key in starts and starts[key][1] < ref.numel * ref.itemsize:
            raise FormatError(f"storage {_shown(key)!r} is shorter than the pickle says", path=path)
    tensors = _entries(_walk(obj, path), starts, path, size)
    return FileIndex("pytorch", tensors, tuple(sorted(regions)), {}, tensor_regions=False)


def _zip_layout(
    f: BinaryIO, size: int, path: Path
) -> tuple[bytes, dict[str, tuple[int, int]], list[tuple[int, int]]]:
    """data.pkl's bytes, each storage's (start, length) and the storages' byte ranges.

    Done apart from unpickling so zipfile's member records are freed before the pickle builds
    its objects (a 100,000-storage zip costs ~50 MB of them).
    """
    archive, infos = open_zip(f, path)
    for info in infos:
        _check_member_name(info.filename, path)
    pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if len(pickles) != 1:
        raise NotThisFormat("zip archive without a single <name>/data.pkl")
    members = zip_members(f, infos, size, path)
    prefix = pickles[0].filename[: -len("data.pkl")]
    byteorder = next((m for m in members if m.info.filename == prefix + "byteorder"), None)
    if byteorder is not None and read_member(archive, byteorder, 16, path).strip() not in (
        b"little",
        b"",
    ):
        raise FormatError("big-endian torch checkpoints are not supported", path=path)
    pickled = _pickle_bytes(archive, next(m for m in members if m.info is pickles[0]), path)
    starts: dict[str, tuple[int, int]] = {}
    regions = []
    for member in members:
        name = member.info.filename
        if name.startswith(prefix + "data/"):
            key = name[len(prefix + "data/") :]
            if member.info.compress_type != zipfile.ZIP_STORED:
                raise FormatError(f"storage {_shown(key)!r} is compressed; torch stores them raw",
                                  path=path)  # fmt: skip
            starts[key] = (member.start, member.end - member.start)
            regions.append((member.start, member.end))
    return pickled, starts, regions


def read_legacy(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """A legacy torch.save file: five pickles (read from a bounded window), then storages."""
    f.seek(0)
    window = f.read(MAX_PICKLE)
    data = io.BytesIO(window)
    storages: dict[str, StorageRef] = {}
    budget = _Budget()

    def next_pickle() -> Any:
        try:
            return _unpickle(data, path, storages, budget)
        except FormatError:
            if len(window) == MAX_PICKLE and data.tell() >= MAX_PICKLE:
                raise FormatError(f"the pickles run past {MAX_PICKLE} bytes, over the limit",
                                  path=path) from None  # fmt: skip
            raise

    magic = next_pickle()
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise FormatError("not a torch checkpoint (bad magic number)", path=path)
    _protocol = next_pickle()
    _sys_info = next_pickle()
    obj = next_pickle()
    keys = next_pickle()
    if not isinstance(keys, list) or not all(type(k) is str for k in keys):
        raise FormatError("legacy checkpoint has a malformed storage list", path=path)
    starts: dict[str, tuple[int, int]] = {}
    regions = []
    pos = data.tell()
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise FormatError(f"storage {_shown(key)!r} is listed but never used", path=path)
        if key in starts:
            raise FormatError(f"storage {_shown(key)!r} is listed twice", path=path)
        f.seek(pos)
        head = f.read(8)
        if len(head) != 8:
            raise FormatError("truncated: a storage's size is missing", path=path)
        (numel,) = struct.unpack("<q", head)
        nbytes = numel * ref.itemsize
        if numel < 0 or pos + 8 + nbytes > size:
            raise FormatError(f"storage {_shown(key)!r} runs past the end of the file", path=path)
        starts[key] = (pos + 8, nbytes)
        regions.append((pos + 8, pos + 8 + nbytes))
        pos += 8 + nbytes
    tensors = _entries(_walk(obj, path), starts, path, size)
    return FileIndex("pytorch", tensors, tuple(regions), {}, tensor_regions=False)


def sniff(prefix: bytes) -> str | None:
    """'zip' or 'legacy' when the first bytes look like a torch checkpoint, else None."""
    if prefix.startswith(b"PK\x03\x04"):
        return "zip"
    if prefix.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"):
        return "legacy"
    return None


def read_index(f: BinaryIO, size: int, path: Path) -> FileIndex:
    """Index a torch checkpoint of either layout; FormatError for anything else."""
    f.seek(0)
    kind = sniff(f.read(16))
    f.seek(0)
    if kind == "zip":
        return read_zip(f, size, path)
    if kind == "legacy":
        return read_legacy(f, size, path)
    raise NotThisFormat("neither the zip nor the legacy torch layout")
