"""Checkpoint formats: detect by content, read the tensor index from headers only.

Every parser returns a :class:`FileIndex`; only :class:`~modelmanager.errors.FormatError` may
escape one, naming the file and the cause. Nothing here executes code from a file.
"""

from __future__ import annotations

from pathlib import Path

from modelmanager.core.formats import safetensors
from modelmanager.core.formats.base import GENERIC, DtypeHints, FileIndex, TensorEntry
from modelmanager.errors import FormatError, UserError

__all__ = ["GENERIC", "DtypeHints", "FileIndex", "TensorEntry", "index_file"]


def index_file(path: Path, size: int) -> FileIndex:
    """The tensor index of a file, chosen by content and name; unknown files are generic.

    A file named like a known format that breaks its rules is an error; a file that merely
    looks like one by its first bytes but does not parse is stored generically.
    """
    try:
        with open(path, "rb") as f:
            prefix = f.read(16)
            claimed = path.suffix.lower() in safetensors.SUFFIXES
            if claimed or safetensors.sniff(prefix, size):
                f.seek(0)
                try:
                    return safetensors.read_index(f, size, path)
                except FormatError:
                    if claimed:
                        raise
    except OSError as e:
        raise UserError(f"cannot read file ({e.strerror or e})", path=path) from None
    return GENERIC
