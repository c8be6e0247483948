"""The Python API: a stored version's tensors in code, and its files in a folder.

    import modelmanager as mm
    state = mm.load("llama-3-8b@prod", framework="torch")   # every tensor, by name
    with mm.open("llama-3-8b@prod") as v:                    # lazy, like safetensors.safe_open
        w = v.tensor("model.embed_tokens.weight")            # fetches only its chunks
    path = mm.checkout("llama-3-8b@prod")                    # a folder any tool can read

The same services as the command line underneath (load_version, the fetcher that verifies
every chunk, export), so what is documented for ``modelmanager load`` and ``export`` holds
here. Tensors come back in their stored dtype and shape (see :mod:`services.tensors` for what
each format gives); torch is imported only when ``framework="torch"`` asks for it. Errors are
:mod:`modelmanager.errors` types with one line saying what and where. See docs/python-api.md.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelmanager.core.repo.manifest import FileRecord, Manifest, MetaValue, TensorRecord
from modelmanager.errors import NotFoundError, UserError
from modelmanager.services import Workspace, open_workspace

if TYPE_CHECKING:
    from modelmanager.services.tensors import Bytes, Read

__all__ = ["Framework", "TensorNotFound", "Version", "checkout", "load", "open"]

Framework = Literal["numpy", "np", "torch", "pt"]
_FRAMEWORKS = {"numpy": "numpy", "np": "numpy", "torch": "torch", "pt": "torch"}


class TensorNotFound(NotFoundError, KeyError):
    """A tensor name the version does not have (also a KeyError, as a dict's lookup is)."""

    def __str__(self) -> str:
        return NotFoundError.__str__(self)


def _framework(name: str) -> str:
    found = _FRAMEWORKS.get(name)
    if found is None:
        raise UserError(f"unknown framework {name!r}: use 'numpy' or 'torch'")
    return found


@contextmanager
def _workspace(repo: str | os.PathLike[str] | None) -> Iterator[Workspace]:
    ws = open_workspace(Path(repo) if repo is not None else None)
    try:
        yield ws
    finally:
        ws.close()


def _converter(framework: str) -> Callable[[Any], Any]:
    """numpy arrays -> the framework's tensors (torch imported here, only when asked for)."""
    if framework == "numpy":
        return lambda array: array
    try:
        import torch
    except ImportError:
        raise UserError("framework='torch' needs PyTorch: pip install torch") from None
    import numpy as np

    special = {"bfloat16": torch.bfloat16, "float8_e4m3fn": torch.float8_e4m3fn,
               "float8_e5m2": torch.float8_e5m2}  # fmt: skip

    def convert(array: np.ndarray[Any, Any]) -> Any:
        if array.dtype.name in special:  # ml_dtypes' types: torch takes their bits
            bits = array.view(np.uint16 if array.dtype.itemsize == 2 else np.uint8)
            return torch.from_numpy(bits).view(special[array.dtype.name])
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return torch.from_numpy(array)

    return convert


def _tensor_files(manifest: Manifest) -> dict[str, tuple[FileRecord, TensorRecord]]:
    """Every tensor of the version by name: the first file (in path order) wins on a clash."""
    out: dict[str, tuple[FileRecord, TensorRecord]] = {}
    for f in manifest.files:
        for t in f.tensors:
            out.setdefault(t.name, (f, t))
    return out


def load(
    ref: str, *, framework: Framework = "numpy", repo: str | os.PathLike[str] | None = None,
    files: Collection[str] | None = None, threads: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every tensor of the version ``ref`` names, by name, as numpy arrays or torch tensors.

    ``repo`` is a repository folder (default: MODELMANAGER_REPO, else the user's own);
    ``files`` limits the load to those paths of the version (a folder shipping both
    model.safetensors and pytorch_model.bin loads one); only files with tensors are read.
    A name in two files comes from the first file in path order. Arrays share one buffer
    per file, as ``safetensors.numpy.load_file``'s do not need to: nothing is copied twice.
    """
    from modelmanager.services.loading import load_version
    from modelmanager.services.pin_records import note_use
    from modelmanager.services.tensors import FileTensors

    convert = _converter(_framework(framework))
    with _workspace(repo) as ws:
        manifest = ws.repo.resolve(ref)
        known = {f.path for f in manifest.files}
        missing = sorted(set(files or ()) - known)
        if missing:
            raise NotFoundError(f"{manifest.ref} has no file {missing[0]!r}")
        wanted = {f.path for f in manifest.files
                  if f.tensors and (files is None or f.path in files)}  # fmt: skip
        result = load_version(ws, manifest, threads=threads, paths=wanted)
        note_use(ws.repo, manifest.model, manifest.seq)  # the hot tier's least-recently-used
    out: dict[str, Any] = {}
    for f in manifest.files:
        if f.path not in result.files:
            continue
        tensors = FileTensors(f, _slicer(result.files[f.path].data))
        for t in f.tensors:
            if t.name not in out:
                out[t.name] = convert(tensors.array(t))
    return out


def _slicer(data: Bytes) -> Read:
    """A file's reader over its bytes in memory."""
    return lambda start, end: data[start:end]


class Version:
    """One version opened for lazy reads (see :func:`open`); use it in a ``with`` block."""

    def __init__(self, ws: Workspace, ref: str, framework: str, threads: int | None) -> None:
        from modelmanager.services.pin_records import note_use
        from modelmanager.services.reading import VersionReader

        self._ws = ws
        try:
            self.manifest: Manifest = ws.repo.resolve(ref)
            self._convert = _converter(framework)
            self._reader = VersionReader(ws, self.manifest, threads=threads)
            note_use(ws.repo, self.manifest.model, self.manifest.seq)
        except BaseException:
            ws.close()
            raise
        self._tensors = _tensor_files(self.manifest)
        self._files: dict[str, Any] = {}

    @property
    def ref(self) -> str:
        """The version as ``model@N``."""
        return self.manifest.ref

    @property
    def metadata(self) -> dict[str, MetaValue]:
        """The version's metadata (facts read at import, and what the user set)."""
        return dict(self.manifest.metadata)

    def keys(self) -> list[str]:
        """Every tensor name of the version (in file order, then each file's order)."""
        return list(self._tensors)

    def files(self) -> list[str]:
        """Every file path of the version."""
        return [f.path for f in self.manifest.files]

    def __iter__(self) -> Iterator[str]:
        """The tensor names, as :meth:`keys` lists them."""
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def tensor(self, name: str) -> Any:
        """One tensor in its stored dtype and shape; only the chunks it spans are fetched.

        TensorNotFound (a KeyError) when the version has no tensor of that name."""
        from modelmanager.services.tensors import FileTensors

        found = self._tensors.get(name)
        if found is None:
            raise TensorNotFound(f"{self.manifest.ref} has no tensor {name!r}")
        f, t = found
        tensors = self._files.get(f.path)
        if tensors is None:
            tensors = FileTensors(f, functools.partial(self._reader.read, f))
            self._files[f.path] = tensors
        return self._convert(tensors.array(t))

    get_tensor = tensor  # safetensors.safe_open's name for it

    def read(self, path: str) -> bytes:
        """The bytes of the version's file ``path`` (NotFoundError naming it otherwise)."""
        f = self._reader.file(path)
        return self._reader.read(f, 0, f.size).tobytes()

    def close(self) -> None:
        """Stop the reader threads and close the repository."""
        try:
            self._reader.close()
        finally:
            self._ws.close()

    def __enter__(self) -> Version:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(  # mm.open, as safetensors.safe_open and builtins.open read
    ref: str, *, framework: Framework = "numpy", repo: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> Version:  # fmt: skip
    """The version ``ref`` names, opened for lazy reads of its tensors and files."""
    kind = _framework(framework)
    return Version(open_workspace(Path(repo) if repo is not None else None), ref, kind, threads)


def checkout(ref: str, *, repo: str | os.PathLike[str] | None = None) -> Path:
    """A folder with the version's original files, byte for byte, for any tool to read.

    Made once in the per-user cache (MODELMANAGER_CACHE) and reused while its files are as
    they were made; files unchanged since another checkout of the model are hard links to it.
    Treat the folder as read-only: its files may be shared with other versions' checkouts.
    """
    from modelmanager.services.checkout import checkout as make

    with _workspace(repo) as ws:
        return make(ws, ref)
