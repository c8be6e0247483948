"""The rules every tensor index obeys: shared by the format parsers and the manifest reader.

An import checks what a parser produced with the same rules a manifest is read with, before the
first chunk is written, so no import can store a version that ``verify`` later calls invalid.
Each rule raises ValueError saying what is wrong; the caller adds the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modelmanager.core.text import clipped

#: Tensors one file may hold. Every tensor costs memory in the index, the manifest and the
#: catalog; a file declaring more is refused with its count (issue 15: bounded memory).
MAX_TENSORS = 100_000
#: Characters of a tensor name at most, in any format.
MAX_NAME = 4096
#: A dtype is a short identifier in the format's own spelling ('F32', 'Q4_K', 'ONNX17').
_DTYPE = re.compile(r"[A-Za-z0-9_]{1,32}")


def escaped(text: str, limit: int = 80) -> str:
    """``text`` quoted and clipped for a one-line message (see :func:`core.text.shown`)."""
    return f"'{clipped(text, limit)}'"


def count(value: Any, what: str, minimum: int = 0) -> int:
    """An integer >= ``minimum`` (bool and float are not integers)."""
    if type(value) is not int or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}")
    return value


def text(value: Any, what: str) -> str:
    """A string that can be written as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {escaped(value)} is not valid Unicode") from None
    return value


def str_map(value: Any, what: str) -> dict[str, str]:
    """A mapping of UTF-8 strings to UTF-8 strings."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{what} must map strings to strings")
    for k, v in value.items():
        text(k, f"{what} key")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{what} {escaped(k)} has a value {escaped(v)} that is not valid "
                             "Unicode") from None  # fmt: skip
    return value


def fact_map(value: Any, what: str) -> Mapping[str, str | int]:
    """Model facts: UTF-8 names to UTF-8 text or whole numbers (a size: layers, vocabulary)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must map strings to strings or integers")
    for k, v in value.items():
        text(k, f"{what} key")
        if type(v) is not int:
            if not isinstance(v, str):
                raise ValueError(f"{what} {escaped(k)} must be a string or an integer")
            text(v, f"{what} {escaped(k)} value")
    return value


def dtype(value: Any, name: str) -> str:
    """A dtype spelling: a short identifier."""
    if not isinstance(value, str) or not _DTYPE.fullmatch(value):
        shown = escaped(value) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"tensor {escaped(name)} has a bad dtype {shown}")
    return value


def shape(value: Any, name: str) -> tuple[int, ...]:
    """A shape: a list or tuple of sizes >= 0."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"tensor {escaped(name)} has a shape that is not a list")
    if not all(type(d) is int and d >= 0 for d in value):
        raise ValueError(f"tensor {escaped(name)} has a negative or non-integer size in its shape")
    return tuple(value)


def tensor_fields(
    name: Any, dtype_: Any, shape_: Any, start: Any, end: Any, size: int
) -> tuple[str, str, tuple[int, ...], int, int]:
    """One tensor's fields checked: UTF-8 name, sane dtype, shape, 0 <= start <= end <= size."""
    name = text(name, "tensor name")
    dtype(dtype_, name)
    dims = shape(shape_, name)
    if not count(start, "tensor start") <= count(end, "tensor end") <= size:
        raise ValueError(f"tensor {escaped(name)} lies outside the file ({start}-{end} of {size})")
    return name, dtype_, dims, start, end
