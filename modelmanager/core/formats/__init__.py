"""Checkpoint formats: detect by content, read the tensor index from headers only.

Every parser returns a :class:`FileIndex`; only :class:`~modelmanager.errors.FormatError` may
escape one, naming the file and the cause. Nothing here executes code from a file.
"""

from __future__ import annotations

from pathlib import Path

from modelmanager.core.formats import npy, pytorch, safetensors
from modelmanager.core.formats.base import (
    GENERIC,
    DtypeHints,
    FileIndex,
    NotThisFormat,
    TensorEntry,
)
from modelmanager.errors import FormatError, UserError

__all__ = ["GENERIC", "DtypeHints", "FileIndex", "TensorEntry", "index_file"]


def index_file(path: Path, size: int) -> FileIndex:
    """The tensor index of a file, chosen by content (and name); unknown files are generic.

    A file whose content is a known format but breaks its rules is an error (for safetensors,
    a file merely named like one is too). Content that is no known format is stored
    generically, whatever its name.
    """
    try:
        with open(path, "rb") as f:
            prefix = f.read(16)
            suffix = path.suffix.lower()
            f.seek(0)
            if suffix in safetensors.SUFFIXES or safetensors.sniff(prefix, size):
                try:
                    return safetensors.read_index(f, size, path)
                except FormatError:
                    if suffix in safetensors.SUFFIXES:
                        raise
                f.seek(0)
            if npy.sniff(prefix):
                try:
                    return npy.read_npy(f, size, path)
                except NotThisFormat:
                    pass
            f.seek(0)
            if suffix == ".npz" and prefix.startswith(b"PK\x03\x04"):
                try:
                    return npy.read_npz(f, size, path)
                except NotThisFormat:
                    pass
            f.seek(0)
            if pytorch.sniff(prefix):
                try:
                    return pytorch.read_index(f, size, path)
                except NotThisFormat:
                    pass
    except OSError as e:
        raise UserError(f"cannot read file ({e.strerror or e})", path=path) from None
    return GENERIC
