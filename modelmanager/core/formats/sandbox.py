"""Formats read by native or memory-mapping parsers (GGUF, HDF5, ONNX), in a child process.

h5py (libhdf5) and onnx (protobuf) are C parsers with a history of memory-safety bugs, and the
gguf reader memory-maps the file (a file truncated under it kills the process with SIGBUS).
So each runs in a child Python process with an address-space and CPU-time limit and a wall
clock timeout: a crash, a hang or a bomb becomes a FormatError for that file, never a dead
app. The child prints the index as JSON; the parent validates every name, offset and size
before it trusts any of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelmanager.core.children import (
    NEUTRAL_FOLDER,
    SANDBOX_FLAG,
    child_environment,
    python_child,
)
from modelmanager.core.formats import gguf_index, onnx_index, rules
from modelmanager.core.formats.base import MAX_META_VALUE, FileIndex, TensorEntry, fitted
from modelmanager.core.formats.gguf_index import MAX_SHOWN, Refused
from modelmanager.errors import FormatError

MEMORY_LIMIT = 2 << 30
CPU_SECONDS = 60
WALL_SECONDS = 120
MAX_META_CHARS = MAX_META_VALUE
#: Metadata entries kept for display (a GGUF may hold thousands; the file is stored whole).
MAX_META_KEYS = MAX_SHOWN
#: How a frozen app (PyInstaller, which has no ``python -m``) asks its own program for a child.
CHILD_FLAG = SANDBOX_FLAG
GGUF_MAGIC = b"GGUF"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _limits() -> None:  # pragma: no cover - runs in the child before exec
    import resource

    # Never above a limit the app itself runs under (a child cannot raise its hard limit).
    for which, wanted in ((resource.RLIMIT_AS, MEMORY_LIMIT), (resource.RLIMIT_CPU, CPU_SECONDS)):
        _soft, hard = resource.getrlimit(which)
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(which, (limit, limit))


#: The child's program. Not ``-m modelmanager.core.formats.sandbox``: the package imports this
#: module first, and runpy then warns on stderr, which became the reason shown for a failure.
_CHILD_CODE = (
    "import sys; from modelmanager.core.formats.sandbox import child_main; "
    "sys.exit(child_main(sys.argv[1:]))"
)


def child_command(kind: str, path: Path) -> list[str]:
    """The argument list of a sandbox child for ``path``: Python in isolated mode (``-I``: no
    working folder, script folder, PYTHONPATH or user site-packages on ``sys.path``), so a
    ``gguf.py`` or ``modelmanager/`` beside the model can never shadow a module."""
    # the child runs in NEUTRAL_FOLDER: the path is made absolute
    return python_child(CHILD_FLAG, _CHILD_CODE, kind, os.path.abspath(path))


def read_index(kind: str, path: Path, size: int) -> FileIndex:
    """Index ``path`` as ``kind`` ('gguf', 'hdf5', 'onnx') in a limited child process."""
    try:
        proc = subprocess.run(
            child_command(kind, path), capture_output=True, timeout=WALL_SECONDS, check=False,
            cwd=NEUTRAL_FOLDER, env=child_environment(),
            preexec_fn=_limits if os.name == "posix" else None,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise FormatError(
            f"the {kind} parser took over {WALL_SECONDS} s: refused", path=path
        ) from None
    if proc.returncode != 0:
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise FormatError(f"the {kind} parser failed ({why}) on this file: {tail[0][:200]}",
                          path=path)  # fmt: skip
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise FormatError(f"the {kind} parser gave no readable answer", path=path) from None
    if isinstance(doc, dict) and "error" in doc:
        raise FormatError(str(doc["error"])[:500], path=path)
    return _validated(doc, kind, path, size)


def _record(item: Any, kind: str, size: int) -> TensorEntry:
    """One tensor record of the child's answer: [name, dtype, shape, start, end], checked."""
    if not isinstance(item, list) or len(item) != 5:
        raise ValueError(f"the {kind} parser gave a malformed tensor record")
    name, dtype, shape, start, end = item
    return TensorEntry(*rules.tensor_fields(name, dtype, shape, start, end, size))


def _validated(doc: Any, kind: str, path: Path, size: int) -> FileIndex:
    """The child's answer as an index; anything malformed is the file's FormatError.

    The child is trusted no more than the file: every record is checked for shape here, and
    by the rules every index obeys in ``formats.index_file`` (names, ranges, overlaps).
    """
    if not isinstance(doc, dict):
        raise FormatError(f"the {kind} parser gave a malformed answer", path=path)
    raw = doc.get("tensors", [])
    if not isinstance(raw, list):
        raise FormatError(f"the {kind} parser gave a malformed tensor list", path=path)
    if len(raw) > rules.MAX_TENSORS:
        raise FormatError(f"{len(raw)} tensors in one file, over the limit of {rules.MAX_TENSORS}",
                          path=path)  # fmt: skip
    try:
        tensors = [_record(item, kind, size) for item in raw]
    except ValueError as e:
        raise FormatError(str(e), path=path) from None
    tensors.sort(key=lambda t: (t.start, t.end))
    meta = doc.get("metadata", {})
    if not isinstance(meta, dict):
        raise FormatError(f"the {kind} parser gave malformed metadata", path=path)
    meta = {str(k)[:200]: str(v)[:MAX_META_CHARS] for k, v in meta.items()}
    disjoint = doc.get("disjoint", True)
    if not isinstance(disjoint, bool):
        raise FormatError(f"the {kind} parser gave a malformed answer", path=path)
    return FileIndex(kind, tuple(tensors), (), meta, tensor_regions=disjoint,
                     facts=FACTS[kind](meta))  # fmt: skip


def _hdf5_facts(metadata: dict[str, str]) -> dict[str, str]:
    """A Keras model's HDF5 file records the Keras version that saved it."""
    return {"framework": "keras"} if "keras_version" in metadata else {}


#: Each sandboxed format's model facts, read in the parent from the checked metadata.
FACTS: dict[str, Callable[[dict[str, str]], dict[str, str]]] = {
    "gguf": gguf_index.facts, "hdf5": _hdf5_facts, "onnx": onnx_index.facts,
}  # fmt: skip


# -- in the child ------------------------------------------------------------------------


def _gguf(path: Path) -> dict[str, Any]:
    return gguf_index.index(path)


def _hdf5(path: Path) -> dict[str, Any]:
    import h5py

    tensors: list[list[Any]] = []
    with h5py.File(path, "r") as h:

        def visit(name: str, obj: Any) -> None:
            if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "fiucb":
                return
            dtype = f"{obj.dtype.kind}{obj.dtype.itemsize * 8}".upper().replace("B8", "BOOL")
            offset = obj.id.get_offset()
            if offset is not None:
                start, end = int(offset), int(offset) + int(obj.id.get_storage_size())
            elif obj.chunks and obj.id.get_num_chunks():
                spans = [obj.id.get_chunk_info(i) for i in range(obj.id.get_num_chunks())]
                start = min(int(c.byte_offset) for c in spans)
                end = max(int(c.byte_offset) + int(c.size) for c in spans)
            else:
                start = end = 0
            tensors.append([name, dtype, [int(d) for d in obj.shape], start, end])

        h.visititems(visit)
        metadata = {k: v.decode() if isinstance(v, bytes) else v for k, v in h.attrs.items()}
        metadata.update(_keras_layers(h))
    return {"tensors": tensors, "metadata": metadata, "disjoint": False}


#: Metadata key of a Keras HDF5 file's layers: ``{"group": where the layer groups are
#: ("model_weights" in a saved model, "" in saved weights), "total": n, "items": [names in
#: the model's order]}``; names past the metadata value cap are left out (total counts them).
KERAS_LAYERS = "keras.layers"


def _keras_layers(h: Any) -> dict[str, str]:
    """The Keras layer order (attribute ``layer_names``) of a model's or weights' HDF5 file,
    weightless layers included; nothing for other HDF5 files."""
    import h5py

    for group in ("model_weights", ""):
        obj = h.get(group) if group else h
        if not isinstance(obj, h5py.Group) or "layer_names" not in obj.attrs:
            continue
        raw = obj.attrs["layer_names"]
        names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                 for n in getattr(raw, "flat", [raw])]  # fmt: skip
        names = [n[: onnx_index.MAX_SHOWN_NAME] for n in names]
        return {KERAS_LAYERS: fitted(names, len(names), group=group)}
    return {}


def _child(kind: str, path: Path) -> dict[str, Any]:
    readers = {"gguf": _gguf, "hdf5": _hdf5}
    if kind == "onnx":
        return onnx_index.index(path)
    return readers[kind](path)


def child_main(argv: list[str]) -> int:  # pragma: no cover - runs in the child
    """The child's side: index ``argv = [kind, path]`` and print it (or the error) as JSON."""
    kind, path = argv[0], Path(argv[1])
    try:
        result = _child(kind, path)
    except MemoryError:
        result = {"error": f"the {kind} file asks for more memory than allowed"}
    except Refused as e:  # a limit or a length past the end: the message names the number
        result = {"error": f"{kind} header refused: {e}"}
    except Exception as e:  # the child reports every failure as data
        result = {"error": f"not a readable {kind} file ({type(e).__name__}: {e})"}
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through read_index
    sys.exit(child_main(sys.argv[1:]))
