"""Checkpoint formats: detect by content, read the tensor index from headers only.

Every parser returns a :class:`FileIndex`; only :class:`~modelmanager.errors.FormatError` may
escape one, naming the file and the cause. Nothing here executes code from a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelmanager.core.formats import hf_config, npy, pytorch, rules, safetensors, sandbox
from modelmanager.core.formats.base import (
    GENERIC,
    DtypeHints,
    FileIndex,
    NotThisFormat,
    RefusedContent,
    TensorEntry,
    merge_facts,
)
from modelmanager.core.localfiles import open_regular
from modelmanager.errors import FormatError, UserError

__all__ = [
    "FILE_TYPES", "GENERIC", "DtypeHints", "FileIndex", "FileType", "RefusedContent",
    "TensorEntry", "index_file", "merge_facts",
]  # fmt: skip


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _check_names(index: FileIndex, path: Path) -> None:
    """Refuse tensor names that could be mistaken for paths or hide text (any format).

    Names are shown to people and may become file names (loading a version into a folder):
    no control characters, no absolute paths, no '..' components.
    """
    for t in index.tensors:
        name = t.name
        parts = name.replace("\\", "/").split("/")
        if (
            not name
            or len(name) > rules.MAX_NAME
            or _CONTROL.search(name)
            or name.startswith(("/", "\\"))
            or ".." in parts
        ):
            raise FormatError(
                f"tensor name {rules.escaped(name)} is unsafe (empty, too long, control "
                "characters, or a path leading out of its folder)",
                path=path,
            )


def _check_layout(index: FileIndex, size: int) -> None:
    """Every region inside the file and, where chunks are cut at tensors, no two overlapping.

    The chunk planner needs disjoint regions; a format whose tensors may share bytes (views of
    one storage, HDF5) says so with ``tensor_regions=False`` and is cut at its regions only.
    """
    for start, end in index.regions:
        if not (type(start) is int and type(end) is int and 0 <= start <= end <= size):
            raise ValueError(f"a header region ({start}-{end}) lies outside the file")
    spans = [(start, end, "") for start, end in index.regions]
    if index.tensor_regions:
        spans += [(t.start, t.end, t.name) for t in index.tensors]
    spans.sort()
    pos, before = 0, ""
    for start, end, name in spans:
        if start < pos:
            what = f"tensor {rules.escaped(name)}" if name else "a header"
            other = f"tensor {rules.escaped(before)}" if before else "the header"
            raise ValueError(
                f"{what} (bytes {start}-{end}) overlaps {other}: tensors sharing bytes "
                "are not allowed in this format"
            )
        if end > pos:
            pos, before = end, name


def _check_index(index: FileIndex, size: int) -> None:
    """Raise ValueError unless ``index`` obeys the rules (see ``_validated_index``)."""
    if not isinstance(index.format, str) or not isinstance(index.tensors, tuple):
        raise ValueError("the parser gave a malformed index")
    if len(index.tensors) > rules.MAX_TENSORS:
        raise ValueError(
            f"{len(index.tensors)} tensors in one file, over the limit of {rules.MAX_TENSORS}"
        )
    names: set[str] = set()
    for t in index.tensors:
        rules.tensor_fields(t.name, t.dtype, t.shape, t.start, t.end, size)
        if t.name in names:
            raise ValueError(f"tensor name {rules.escaped(t.name)} appears twice")
        names.add(t.name)
    del names
    rules.str_map(index.metadata, "metadata")
    rules.fact_map(index.facts, "facts")
    _check_layout(index, size)


def _validated_index(index: FileIndex, path: Path, size: int) -> FileIndex:
    """A parser's index checked by the rules manifests are read with, and a few more.

    Runs on every index before the first chunk is written, so an import can never store a
    version that ``verify`` would later call invalid: names UTF-8, unique and safe; dtypes
    short identifiers; sizes whole numbers; every byte range inside the file; metadata text.
    """
    try:
        _check_index(index, size)
    except ValueError as e:
        raise FormatError(str(e), path=path) from None
    _check_names(index, path)
    return index


def _attempt(read: Callable[[], FileIndex], claimed: bool) -> FileIndex | None:
    """Run one parser: its index, or None when the content is not (really) its format.

    Broken content is an error only when the file's name claims the format; content that
    merely starts like it is stored generically. Content asking to run code is always refused.
    """
    try:
        index = read()
    except NotThisFormat:
        return None
    except RefusedContent:
        raise
    except FormatError:
        if claimed:
            raise
        return None
    return index


def index_file(
    path: Path, size: int, identity: tuple[int, int] | None = None, name: str | None = None
) -> FileIndex:
    """The tensor index of a file, chosen by content (and name); unknown files are generic.

    A file named like a known format whose content breaks the format's rules is an error;
    content that is no known format is stored generically, whatever its name. Running out of
    memory on a file is that file's error too (one line, never a traceback). The file is
    opened without blocking and only if it is regular (and the ``identity`` listed, if given).
    ``name`` is the file's name in the version: a folder's own config.json and model card are
    generic files that state the model's facts (:func:`hf_config.index`).
    """
    try:
        index = _index(path, size, identity)
        if index is GENERIC and name is not None:
            index = hf_config.index(name, path, size, identity) or index
    except MemoryError:
        raise FormatError("out of memory while reading this file", path=path) from None
    return index


def _index(path: Path, size: int, identity: tuple[int, int] | None) -> FileIndex:
    suffix = path.suffix.lower()
    try:
        with open_regular(path, identity) as f:
            prefix = f.read(16)

            def at_start(
                read: Callable[[BinaryIO, int, Path], FileIndex],
            ) -> Callable[[], FileIndex]:
                def run() -> FileIndex:
                    f.seek(0)
                    return read(f, size, path)

                return run

            candidates: list[tuple[bool, bool, Callable[[], FileIndex]]] = [
                (safetensors.sniff(prefix, size), suffix in safetensors.SUFFIXES,
                 at_start(safetensors.read_index)),
                (npy.sniff(prefix), suffix == ".npy", at_start(npy.read_npy)),
                (prefix.startswith(b"PK\x03\x04"), suffix == ".npz", at_start(npy.read_npz)),
                (bool(pytorch.sniff(prefix)), suffix in pytorch.SUFFIXES,
                 at_start(pytorch.read_index)),
            ]  # fmt: skip
            for looks, claimed, read in candidates:
                if looks or claimed:
                    found = _attempt(read, claimed and (looks or suffix != ".bin"))
                    if found is not None:
                        return _validated_index(found, path, size)
    except OSError as e:
        raise UserError(f"cannot read file ({e.strerror or e})", path=path) from None
    kind = (
        "gguf" if prefix.startswith(sandbox.GGUF_MAGIC)
        else "hdf5" if prefix.startswith(sandbox.HDF5_MAGIC)
        else "onnx" if suffix == ".onnx"
        else None
    )  # fmt: skip
    if kind is not None:
        found = _attempt(lambda: sandbox.read_index(kind, path, size),
                         suffix in SANDBOXED_SUFFIXES[kind])  # fmt: skip
        if found is not None:
            return _validated_index(found, path, size)
    return GENERIC


#: The names that claim each sandboxed format (broken content with these names is an error).
SANDBOXED_SUFFIXES = {"gguf": (".gguf",), "hdf5": (".h5", ".hdf5", ".keras"), "onnx": (".onnx",)}


@dataclass(frozen=True)
class FileType:
    """A checkpoint file type the app opens, as installers register it with the desktop."""

    name: str
    description: str
    mime: str
    suffixes: tuple[str, ...]
    known: bool = False  # the desktop's own MIME database already defines ``mime``


#: What installers associate with the app (issue 9): every format it imports, except names too
#: generic to claim (PyTorch's ``.bin``, Keras' zip ``.keras``).
FILE_TYPES = (
    FileType("safetensors", "safetensors checkpoint", "application/x-safetensors",
             safetensors.SUFFIXES),
    FileType("gguf", "GGUF model", "application/x-gguf", SANDBOXED_SUFFIXES["gguf"]),
    FileType("pytorch", "PyTorch checkpoint", "application/x-pytorch-checkpoint",
             tuple(s for s in pytorch.SUFFIXES if s != ".bin")),
    FileType("npz", "NumPy arrays", "application/x-npz", (".npz",)),
    FileType("npy", "NumPy array", "application/x-npy", (".npy",)),
    FileType("onnx", "ONNX model", "application/x-onnx", SANDBOXED_SUFFIXES["onnx"]),
    FileType("hdf5", "HDF5 (Keras) model", "application/x-hdf", (".h5", ".hdf5"), known=True),
)  # fmt: skip
