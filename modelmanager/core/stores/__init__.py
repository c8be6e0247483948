"""Models other tools keep on this workstation, seen read-only (issue 10).

Each adapter lists the models of one kind of store from the layout its tool writes: the
Hugging Face hub cache, Ollama's manifests and blobs, LM Studio's publisher/model folders, or
any plain folder of checkpoints. Nothing here writes to a store. A store can change while it
is read (a download finishing, a model deleted): every item that cannot be read becomes an
error on that item, and the rest of the listing still appears.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelmanager.core.formats import FILE_TYPES
from modelmanager.core.localfiles import kind_of, open_regular
from modelmanager.errors import UserError

KINDS = ("huggingface", "ollama", "lmstudio", "folder")
KIND_TITLES = {
    "huggingface": "Hugging Face cache",
    "ollama": "Ollama",
    "lmstudio": "LM Studio",
    "folder": "Folder",
}
#: Names that mark a weight file in a plain folder (the importable formats, and PyTorch's .bin).
WEIGHT_SUFFIXES = frozenset({s for t in FILE_TYPES for s in t.suffixes} | {".bin", ".keras"})
#: Ollama layer media types -> the file name the layer is given when it is adopted.
OLLAMA_LAYER_NAMES = {
    "application/vnd.ollama.image.model": "model.gguf",
    "application/vnd.ollama.image.projector": "projector.gguf",
    "application/vnd.ollama.image.adapter": "adapter.gguf",
    "application/vnd.ollama.image.template": "template",
    "application/vnd.ollama.image.system": "system",
    "application/vnd.ollama.image.params": "params.json",
    "application/vnd.ollama.image.license": "license",
    "application/vnd.ollama.image.messages": "messages.json",
}
OLLAMA_HOST = "registry.ollama.ai"
MAX_MANIFEST = 1 << 20


@dataclass(frozen=True)
class StoreFile:
    """One file of a model in a store: the name the model gives it, where its bytes are."""

    name: str
    path: Path
    size: int
    modified: float
    identity: tuple[int, int]  # (device, inode) of the bytes: links to one blob are one file
    weights: bool = False  # a checkpoint file (its tensor index is worth reading)


@dataclass
class StoreModel:
    """A model (one revision or tag of it) as a store holds it."""

    store: str
    name: str
    revision: str = ""
    refs: tuple[str, ...] = ()
    files: list[StoreFile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """How commands name it: NAME, or NAME@REVISION where a store keeps several."""
        return f"{self.name}@{self.revision}" if self.revision else self.name

    @property
    def size(self) -> int:
        """Bytes on disk: a blob that several names link to counts once."""
        return disk_size([self])

    @property
    def modified(self) -> float:
        return max((f.modified for f in self.files), default=0.0)


def disk_size(models: Iterable[StoreModel]) -> int:
    """Bytes on disk of several models: blobs they share (revisions, tags) count once."""
    return sum({f.identity: f.size for m in models for f in m.files}.values())


@dataclass(frozen=True)
class Store:
    """A folder some tool keeps models in, and which layout it has."""

    kind: str
    root: Path
    name: str = ""

    @property
    def title(self) -> str:
        return self.name or KIND_TITLES[self.kind]

    def models(self) -> list[StoreModel]:
        """Every model found, sorted by name; unreadable items carry their errors."""
        lister = LISTERS[self.kind]
        models = sorted(lister(self.title, self.root), key=lambda m: (m.name, m.revision))
        return [_confined(m, self.root) for m in models]


def _confined(model: StoreModel, root: Path) -> StoreModel:
    """``model`` with every file whose bytes lie outside ``root`` (a link leading out of the
    store) turned into an error: nothing outside a store is read, adopted or removed."""
    try:
        real_root = root.resolve()
    except OSError:
        return model
    keep = []
    for f in model.files:
        try:
            real = f.path.resolve(strict=True)
        except (OSError, RuntimeError) as e:  # changed since it was listed
            model.errors.append(f"{f.path}: {getattr(e, 'strerror', None) or e}")
            continue
        if real.is_relative_to(real_root):
            keep.append(f)
        else:
            model.errors.append(f"{f.path}: a link to {real}, outside the store ({root})")
    model.files = keep
    return model


def _stat(path: Path, name: str, model: StoreModel, *, weights: bool = False) -> None:
    """Add ``path`` to ``model`` as ``name``, or an error naming it and the cause."""
    try:
        st = path.stat()  # follows links: a snapshot's link counts as its blob
    except FileNotFoundError:
        what = "a dangling link" if path.is_symlink() else "deleted while being read"
        model.errors.append(f"{path}: {what}")
        return
    except OSError as e:
        model.errors.append(f"{path}: {e.strerror or e}")
        return
    if not stat.S_ISREG(st.st_mode):  # never opened: a FIFO would hang, a device never ends
        model.errors.append(f"{path}: is {kind_of(st.st_mode)}, not a regular file")
        return
    if not os.access(path, os.R_OK):
        model.errors.append(f"{path}: permission denied")
        return
    model.files.append(
        StoreFile(name, path, st.st_size, st.st_mtime, (st.st_dev, st.st_ino), weights)
    )


def _walk(root: Path, model: StoreModel) -> Iterator[Path]:
    """Files under ``root`` (links included, not followed into folders), errors recorded."""

    def failed(e: OSError) -> None:
        model.errors.append(f"{e.filename or root}: {e.strerror or e}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=failed):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath, name)


def _subdirs(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []


# -- Hugging Face hub cache ---------------------------------------------------------------


def _hf(store: str, root: Path) -> Iterator[StoreModel]:
    """``models--org--name/{blobs,snapshots/REV,refs/REF}``; one entry per snapshot revision.

    Snapshots hold links into ``blobs`` or, where Windows allows no links, copies.
    """
    for repo in _subdirs(root):
        kind, _, rest = repo.name.partition("--")
        if kind != "models" or not rest:  # datasets-- and spaces-- are no models
            continue
        name = rest.replace("--", "/")
        refs: dict[str, list[str]] = {}
        problems: list[str] = []
        refs_dir = repo / "refs"
        if refs_dir.is_dir():
            for ref in refs_dir.rglob("*"):
                if ref.is_file():
                    try:
                        rev = ref.read_text(encoding="utf-8").strip()
                    except (OSError, UnicodeDecodeError) as e:
                        problems.append(f"{ref}: {getattr(e, 'strerror', None) or e}")
                        continue
                    refs.setdefault(rev, []).append(ref.relative_to(refs_dir).as_posix())
        snapshots = _subdirs(repo / "snapshots")
        if not snapshots:
            yield StoreModel(store, name, errors=[*problems, f"{repo}: no snapshots"])
            continue
        for snap in snapshots:
            model = _folder_model(store, name, snap)
            model.revision, model.refs = snap.name, tuple(sorted(refs.get(snap.name, [])))
            model.errors[:0] = problems
            yield model


# -- Ollama -------------------------------------------------------------------------------


def _ollama_name(parts: tuple[str, ...]) -> str:
    """'llama3:latest' for the library on the default host, else 'ns/model:tag' or with host."""
    host, *path, tag = parts
    base = "/".join(path)
    if host == OLLAMA_HOST and path[:1] == ["library"]:
        base = "/".join(path[1:])
    elif host != OLLAMA_HOST:
        base = f"{host}/{base}"
    return f"{base}:{tag}"


def _ollama_blob(root: Path, digest: str) -> Path:
    """``blobs/sha256-HEX`` (``sha256:HEX`` in older versions)."""
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
        raise ValueError(f"not a sha256 digest: {digest[:80]!r}")
    new = root / "blobs" / f"sha256-{hexd}"
    old = root / "blobs" / f"sha256:{hexd}"
    return old if not new.exists() and old.exists() else new


def _ollama(store: str, root: Path) -> Iterator[StoreModel]:
    """``manifests/HOST/NAMESPACE/MODEL/TAG`` (JSON naming layers) + ``blobs/sha256-HEX``."""
    manifests = root / "manifests"
    for path in sorted(manifests.rglob("*")) if manifests.is_dir() else []:
        rel = path.relative_to(manifests).parts
        if len(rel) < 4 or path.is_dir():
            continue
        model = StoreModel(store, _ollama_name(rel))
        try:
            st = path.stat()
            with open_regular(path, (st.st_dev, st.st_ino)) as f:  # a FIFO would hang a read
                doc = json.loads(f.read(MAX_MANIFEST))  # a longer one fails to parse
            layers = list(doc.get("layers") or [])
            config = doc.get("config")
        except (OSError, ValueError, AttributeError, TypeError, UserError) as e:
            why = getattr(e, "strerror", None) or getattr(e, "message", None) or e
            model.errors.append(f"{path}: not a readable manifest ({why})")
            yield model
            continue
        _stat(path, "manifest.json", model)  # adopted too: the model's own description
        seen: dict[str, int] = {}
        entries = [(layer, False) for layer in layers if isinstance(layer, dict)]
        if isinstance(config, dict):
            entries.append((config, True))
        for layer, is_config in entries:
            media = str(layer.get("mediaType", ""))
            name = "config.json" if is_config else OLLAMA_LAYER_NAMES.get(media, "layer")
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}-{seen[name]}"
            try:
                blob = _ollama_blob(root, str(layer.get("digest", "")))
            except ValueError as e:
                model.errors.append(f"{path}: {e}")
                continue
            weights = media in ("application/vnd.ollama.image.model",
                                "application/vnd.ollama.image.projector",
                                "application/vnd.ollama.image.adapter")  # fmt: skip
            _stat(blob, name, model, weights=weights)
        yield model


# -- LM Studio and plain folders ----------------------------------------------------------


def _folder_model(store: str, name: str, root: Path) -> StoreModel:
    """Every file under ``root`` as one model, each named by its path relative to ``root``."""
    model = StoreModel(store, name)
    for path in _walk(root, model):
        rel = path.relative_to(root).as_posix()
        _stat(path, rel, model, weights=path.suffix.lower() in WEIGHT_SUFFIXES)
    return model


def _lmstudio(store: str, root: Path) -> Iterator[StoreModel]:
    """``PUBLISHER/MODEL/files``: one model per model folder."""
    for publisher in _subdirs(root):
        if publisher.name.startswith("."):
            continue
        for folder in _subdirs(publisher):
            yield _folder_model(store, f"{publisher.name}/{folder.name}", folder)


def _plain(store: str, root: Path) -> Iterator[StoreModel]:
    """Each weight file at the top is a model, and each sub-folder holding weight files."""
    try:
        entries = sorted(root.iterdir())
    except OSError as e:
        yield StoreModel(store, root.name, errors=[f"{root}: {e.strerror or e}"])
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            model = _folder_model(store, entry.name, entry)
            if any(f.weights for f in model.files) or model.errors:
                yield model
        elif entry.suffix.lower() in WEIGHT_SUFFIXES or entry.is_symlink():
            model = StoreModel(store, entry.name)
            _stat(entry, entry.name, model, weights=True)
            yield model


LISTERS: dict[str, Callable[[str, Path], Iterator[StoreModel]]] = {
    "huggingface": _hf,
    "ollama": _ollama,
    "lmstudio": _lmstudio,
    "folder": _plain,
}


# -- where stores are ---------------------------------------------------------------------


def _lmstudio_roots(home: Path) -> list[Path]:
    """LM Studio's configured models folder if its settings say, then its defaults."""
    roots = []
    settings = home / ".lmstudio" / "settings.json"
    try:
        doc = json.loads(settings.read_bytes()) if settings.stat().st_size < MAX_MANIFEST else {}
        folder = doc.get("downloadsFolder") if isinstance(doc, dict) else None
        if isinstance(folder, str) and folder:
            roots.append(Path(folder).expanduser())
    except (OSError, ValueError):
        pass
    return [*roots, home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]


def default_locations(env: Mapping[str, str], home: Path, platform: str) -> list[Store]:
    """Where each tool keeps models by default on ``platform`` (sys.platform), in order of
    preference; the caller keeps those that exist."""
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else home / ".cache"
    if env.get("HF_HUB_CACHE"):
        hf = Path(env["HF_HUB_CACHE"])
    elif env.get("HF_HOME"):
        hf = Path(env["HF_HOME"]) / "hub"
    else:
        hf = cache / "huggingface" / "hub"
    found = [Store("huggingface", hf.expanduser())]
    if env.get("OLLAMA_MODELS"):
        found.append(Store("ollama", Path(env["OLLAMA_MODELS"]).expanduser()))
    else:
        found.append(Store("ollama", home / ".ollama" / "models"))
        if platform.startswith("linux"):  # the system service's (install script) models
            found.append(Store("ollama", Path("/usr/share/ollama/.ollama/models")))
    found += [Store("lmstudio", root) for root in _lmstudio_roots(home)]
    return found


def discover(env: Mapping[str, str], home: Path, platform: str,
             extra: Sequence[Store] = ()) -> list[Store]:  # fmt: skip
    """The stores that exist: the default locations, then the folders the user added."""
    stores: list[Store] = []
    seen: set[Path] = set()
    for store in [*default_locations(env, home, platform), *extra]:
        try:
            real = store.root.resolve()
            present = store.root.is_dir()
        except OSError:
            continue
        if present and real not in seen:
            seen.add(real)
            stores.append(store)
    return stores
