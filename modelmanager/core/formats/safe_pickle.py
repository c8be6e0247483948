"""The restricted unpickler PyTorch checkpoints are read with: an allow-list of stubs, bounded.

``find_class`` answers only from an allow-list, and every answer is one of *our* stub
constructors: a tensor record, a storage type, a plain container. It never returns a real
callable named by the file; any other global (``os.system``, ``builtins.eval``, an unknown
class) is refused with a FormatError that names it, before anything it names could run
(RELIABILITY.md rule 9: allow-list or nothing). The stubs have no ``__dict__`` and refuse
BUILD, so a pickle cannot change them. Python's pure-Python unpickler runs the opcodes, each
charged to a budget, so a small file cannot make us build gigabytes (docs/formats.md, Limits).
"""

from __future__ import annotations

import pickle
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar, NoReturn

from modelmanager.core.formats.base import (
    RefusedContent,
)
from modelmanager.core.text import clipped
from modelmanager.errors import FormatError

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
MAX_DIMS = 64
#: Sizes, strides and offsets above this are refused (no real tensor has 2**63 elements).
MAX_INT = 1 << 63

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


_PRIMITIVE_KEYS = (str, bytes, int, float, bool, type(None))


class Budget:
    """What one file's pickles may still cost: opcodes run and key nodes hashed."""

    def __init__(self) -> None:
        self.ops = 0
        self.cost = 0
        self.key_nodes = 0


class _ActiveStack(threading.local):
    """The unpicklers running now in this thread, innermost last (stub functions check keys
    against the current one's budget); per thread, as files are indexed in parallel."""

    def __init__(self) -> None:
        self.stack: list[_RestrictedUnpickler] = []

    def current(self) -> _RestrictedUnpickler:
        return self.stack[-1]


_Active = _ActiveStack()


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
                 budget: Budget) -> None:  # fmt: skip
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
            f"refused to load: the pickle calls {clipped(key)}, which is not a tensor or a plain "
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
            raise _Refused(f"refused: storage '{clipped(key)}' is used with two types")
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


def unpickle(data: IO[bytes], path: Path, storages: dict[str, StorageRef],
              budget: Budget) -> Any:  # fmt: skip
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
