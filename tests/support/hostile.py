"""Shapes shared by the bad-input catalogue (tests/services/test_hostile_catalogue.py).

Each slice of hostile inputs lives in its own module (``hostile_pickle``, ``hostile_headers``)
as two lists: ``CASES`` that must be refused with one line naming the file and ``cause``, and
``LEGAL`` inputs that look odd but are valid and must import (exit 0).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from tests.support.builders import raw_safetensors

#: Writes one hostile file at the path it is given.
Builder = Callable[[Path], None]


class Case(NamedTuple):
    """A refused input: the test id, the file name, how to write it, a word of the error."""

    why: str
    name: str
    build: Builder
    cause: str


class Legal(NamedTuple):
    """An input that looks hostile but is valid: it must import and export byte for byte."""

    why: str
    name: str
    build: Builder


def st(header: object, data: bytes = b"", length: int | None = None) -> Builder:
    """A safetensors-shaped file from a raw header (a dict, or bytes taken as they are)."""

    def build(p: Path) -> None:
        raw_safetensors(p, header, data, length=length)

    return build


def blob(data: bytes) -> Builder:
    """A file holding exactly ``data``."""

    def build(p: Path) -> None:
        p.write_bytes(data)

    return build


def zipped(members: dict[str, bytes], deflate: bool = False) -> Builder:
    """A zip archive of ``members`` (stored, or deflated)."""

    def build(p: Path) -> None:
        mode = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        with zipfile.ZipFile(p, "w", compression=mode) as z:
            for name, data in members.items():
                z.writestr(name, data)

    return build


def patched(build: Builder, edit: Callable[[bytearray], Any]) -> Builder:
    """``build``, then ``edit`` applied to the written bytes in place (a flipped flag, a CRC)."""

    def run(p: Path) -> None:
        build(p)
        data = bytearray(p.read_bytes())
        edit(data)
        p.write_bytes(bytes(data))

    return run
