"""Types of the C extension built from _bytegroup.c (optional: bytegroup.py falls back to numpy)."""

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

_Bytes: TypeAlias = Buffer | np.ndarray[Any, Any]

def interleave(out: _Bytes, n: int, planes: Sequence[_Bytes], /) -> None: ...
def unpair(out: _Bytes, n: int, packed: _Bytes, table: _Bytes, escapes: _Bytes, /) -> int: ...
def split(out: _Bytes, n: int, itemsize: int, data: _Bytes, /) -> None: ...
def pair(packed: _Bytes, escapes: _Bytes, plane: _Bytes, n: int, rank: _Bytes, /) -> int: ...
