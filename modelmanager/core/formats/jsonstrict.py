"""JSON for headers from untrusted files: no duplicate keys, no NaN/Infinity, bounded depth.

Python's json keeps the last of duplicate keys, accepts NaN and raises RecursionError on deep
nesting; each of those becomes a plain ValueError with a message here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def loads_strict(
    text: str | bytes, *, each_object: Callable[[dict[str, Any]], Any] | None = None
) -> Any:
    """Parse JSON strictly; every problem is a ValueError whose message says what is wrong.

    ``each_object``, if given, replaces every object as soon as it is parsed (after the
    duplicate check), so a big document can be held in a compact form while it is read.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    hook: Callable[[list[tuple[str, Any]]], Any] = _no_duplicates
    if each_object is not None:
        convert = each_object

        def hook(pairs: list[tuple[str, Any]]) -> Any:
            return convert(_no_duplicates(pairs))

    try:
        return json.loads(text, object_pairs_hook=hook, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
