"""Models already on this workstation (issue 10): list the stores, adopt, delete.

The stores are read-only (``core.stores``). Adopting imports a store's model as a new version
of a repository model and then reads every file back through the repository, comparing it
byte for byte with the original. Originals are removed only when asked, only after that
check, and only files no other model of the store still uses. Finding the same file kept
twice is services/store_duplicates.py.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from modelmanager.core.faults import crash_point
from modelmanager.core.formats import index_file
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.localfiles import open_regular
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.stores import KINDS, Store, StoreFile, StoreModel, discover
from modelmanager.errors import FormatError, ModelManagerError, NotFoundError, UserError
from modelmanager.services import Changes, Workspace, settings
from modelmanager.services.importing import ImportResult, import_paths
from modelmanager.services.loading import Fetcher, Sink
from modelmanager.services.safety import probe_folder, refuse_on_doubt

# -- which stores -------------------------------------------------------------------------


def user_stores() -> list[Store]:
    """The folders the user added (``stores add``), in the order added."""
    found = settings.read_list("stores.json", "stores")
    try:
        return [Store(d["kind"], Path(d["root"]), str(d.get("name", ""))) for d in found]
    except (KeyError, TypeError):
        path = settings.settings_path("stores.json")
        raise UserError("this list of stores is damaged (an entry lacks kind or root)",
                        path=path) from None  # fmt: skip


def _save(stores: list[Store]) -> None:
    settings.write_list("stores.json", "stores", [
        {"kind": s.kind, "root": str(s.root), "name": s.name} for s in stores])  # fmt: skip


def add_store(root: Path, kind: str = "folder", name: str = "") -> Store:
    """Remember a folder to list (any layout in KINDS); it must exist."""
    if kind not in KINDS:
        raise UserError(f"unknown store kind {kind!r} (one of: {', '.join(KINDS)})")
    root = root.expanduser().absolute()
    if not root.is_dir():
        raise NotFoundError("no such folder", path=root)
    store = Store(kind, root, name)
    stores = [s for s in user_stores() if s.root != root]
    _save([*stores, store])
    return store


def remove_store(which: str) -> Store:
    """Forget a folder the user added (by name or path); its files are not touched."""
    stores = user_stores()
    for s in stores:
        if which in (s.name, str(s.root)) or Path(which).expanduser().absolute() == s.root:
            _save([o for o in stores if o is not s])
            return s
    raise NotFoundError(f"no added store {which!r} (stores ls lists them)")


def all_stores() -> list[Store]:
    """The stores present: each tool's default locations, then the user's folders."""
    return discover(os.environ, Path.home(), sys.platform, user_stores())


def find_store(which: str, stores: list[Store] | None = None) -> Store:
    """A store by its title, kind or folder."""
    stores = all_stores() if stores is None else stores
    for s in stores:
        if which.lower() in (s.title.lower(), s.kind) or which == str(s.root):
            return s
    names = ", ".join(f"{s.title!r}" for s in stores) or "none found"
    raise NotFoundError(f"no store {which!r} (stores here: {names})")


def find_model(store: Store, ref: str, models: list[StoreModel] | None = None) -> StoreModel:
    """``NAME`` or ``NAME@REVISION`` (a revision, a prefix of one, or a ref like main)."""
    models = store.models() if models is None else models
    name, _, rev = ref.partition("@")
    same = [m for m in models if m.name == name]
    if not same:
        raise NotFoundError(f"no model {name!r} in {store.title} ({store.root})")
    if rev:
        same = [m for m in same if m.revision.startswith(rev) or rev in m.refs]
    elif len(same) > 1:
        same = [m for m in same if "main" in m.refs] or same
    if len(same) != 1:
        revs = ", ".join(m.revision[:12] for m in same) or "none matches"
        raise UserError(f"{ref!r} names {len(same)} revisions ({revs}): add @REVISION")
    return same[0]


def default_name(model: StoreModel) -> str:
    """The repository model name adopting suggests: the store's, without an Ollama tag."""
    return model.name.split(":")[0]


# -- tensor index, from headers only ------------------------------------------------------


@dataclass(frozen=True)
class FileSummary:
    """What a weight file's header says, or why it could not be read."""

    format: str = ""
    tensors: int = 0
    parameters: int = 0
    dtypes: tuple[str, ...] = ()
    error: str = ""


def summarize(f: StoreFile) -> FileSummary:
    """The tensor index of a weight file, read from its header (GGUF/HDF5/ONNX in the
    sandbox); a broken or vanished file gives its error instead."""
    try:
        index = index_file(f.path, f.size)
    except (FormatError, UserError, OSError) as e:
        return FileSummary(error=str(e))
    dtypes = tuple(sorted({t.dtype for t in index.tensors}))
    params = sum(t.numel for t in index.tensors)
    return FileSummary(index.format, len(index.tensors), params, dtypes)


# -- adopt --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdoptResult:
    """What adopting did: the version made, the files checked, what was removed and freed."""

    imported: ImportResult
    verified: int
    removed: tuple[Path, ...] = ()
    freed: int = 0
    kept_shared: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.imported.manifest.ref, "verified": self.verified,
                "freed": self.freed, "removed": [str(p) for p in self.removed],
                "kept_shared": [str(p) for p in self.kept_shared]}  # fmt: skip


def _comparer(f: BinaryIO, source: Path) -> Sink:
    """A fetch sink that checks each piece against the original file at its offset."""
    lock = threading.Lock()

    def compare(offset: int, data: BytesLike) -> None:
        view = memoryview(data).cast("B")
        with lock:  # the fetcher's threads call it; seek and read must not interleave
            f.seek(offset)
            original = f.read(len(view))
        if original != view:
            raise UserError(f"differs from the repository's copy near byte {offset}", path=source)

    return compare


def verify_against(ws: Workspace, manifest: Manifest, originals: dict[str, Path],
                   ctx: JobContext, identities: dict[str, tuple[int, int]] | None = None,
                   *, subset: bool = False) -> int:  # fmt: skip
    """Read every file of ``manifest`` back through the repository (decoded and checked
    against its chunk ids) and compare it with the original; raises naming the first file
    that differs. ``identities``: the (device, inode) each original was listed with; only
    that regular file is read. The number of files checked. ``subset``: only the files
    ``originals`` names are checked (an adoption resumed after some were removed)."""
    checked = 0
    with Fetcher(ws, manifest, ctx) as fetcher:
        for rec in manifest.files:
            if subset and rec.path not in originals:
                continue
            checked += 1
            source = originals[rec.path]
            try:
                identity = (identities or {}).get(rec.path) or _identity(source)
                f = open_regular(source, identity)
            except OSError as e:
                raise UserError(f"cannot read it any more ({e.strerror or e})", path=source
                                ) from None  # fmt: skip
            with f:
                if os.fstat(f.fileno()).st_size != rec.size:
                    raise UserError("changed while it was adopted (its size)", path=source)
                fetcher.fetch(rec, _comparer(f, source))
    return checked


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


@dataclass(frozen=True)
class Removal:
    """What removing a store's model deletes, the blobs kept for its other models, and what
    is left alone because it is not a regular file inside the store's own folder."""

    paths: tuple[Path, ...]
    shared: tuple[Path, ...]
    bytes: int
    outside: tuple[Path, ...] = ()


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (resolved) is a regular file inside ``root`` (resolved), not a link."""
    try:
        return path.is_relative_to(root) and stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def removal_preview(
    store: Store, model: StoreModel, models: list[StoreModel] | None = None
) -> Removal:
    """The paths removing ``model`` would delete: its links, and the files no other model of
    the store uses (an Ollama layer or HF blob two tags share stays). ``models``: the store's
    listing, if already made (else it is listed now).

    Only regular files inside the store's own folder (resolved) are ever deleted: a link
    whose target lies elsewhere, and the target, are left alone (in ``outside``)."""
    others: set[tuple[int, int]] = set()
    for other in store.models() if models is None else models:
        if (other.name, other.revision) != (model.name, model.revision):
            others |= {f.identity for f in other.files}
    root = store.root.resolve()
    remove: dict[Path, int] = {}
    shared: list[Path] = []
    outside: list[Path] = []
    for f in model.files:
        real = f.path.resolve()
        if not _inside(real, root) or not f.path.parent.resolve().is_relative_to(root):
            outside.append(f.path)
            continue
        if f.path.is_symlink():
            remove[f.path] = 0
        if f.identity in others:
            shared.append(real)
        else:
            remove[real] = f.size
    return Removal(tuple(remove), tuple(shared), sum(remove.values()), tuple(outside))


def adopt(
    ws: Workspace,
    store: Store,
    model: StoreModel,
    into: str,
    *,
    remove_original: bool = False,
    ctx: JobContext | None = None,
) -> AdoptResult:
    """Import ``model`` as the next version of ``into`` and verify it byte for byte; then,
    if asked, remove the originals now safely stored (see :func:`removal_preview`)."""
    ctx = ctx or JobContext()
    if model.errors:
        raise UserError(f"{model.ref} has {len(model.errors)} unreadable items "
                        f"(first: {model.errors[0]}): nothing adopted")  # fmt: skip
    if not model.files:
        raise UserError(f"{model.ref} has no files: nothing to adopt")
    _check_unchanged(model)  # what is removed afterwards must be what was listed and checked
    names = {f.path: f.name for f in model.files}
    source = f"{store.kind}:{store.root}:{model.ref}"
    earlier = _adopted_before(ws, into, source, model)
    if earlier is not None and len(earlier.files) > len(model.files) and not remove_original:
        raise UserError(
            f"{model.ref} was adopted as {earlier.ref} and {len(earlier.files) - len(model.files)}"
            " of its files have been removed since (an adoption with --remove-original was "
            "interrupted): run it again with --remove-original to finish; nothing was imported"
        )
    if remove_original:
        # Before the first change: the repository trusted and writable, and every folder
        # the originals are removed from writable (a read-only store would stop half way).
        refuse_on_doubt(ws, "adopt and remove the originals")
        for folder in sorted({p.parent for p in removal_preview(store, model).paths}):
            probe_folder(folder, "adopt and remove the originals")
    originals = {f.name: f.path for f in model.files}
    identities = {f.name: f.identity for f in model.files}
    if earlier is not None and remove_original:
        # Resumed: the version exists (some originals may be gone); never a second, partial
        # one. What is left is checked against it, then removed.
        result = ImportResult(earlier, len(earlier.files), earlier.logical_bytes, 0, 0, 0,
                              Changes())  # fmt: skip
        verified = verify_against(ws, earlier, originals, ctx, identities, subset=True)
    else:
        meta = {"adopted_from": source}
        result = import_paths(ws, list(names), into, message=f"adopted from {store.title} "
                              f"{model.ref}", metadata=meta, ctx=ctx, names=names,
                              confine=store.root)  # fmt: skip
        verified = verify_against(ws, result.manifest, originals, ctx, identities)
    if not remove_original:
        return AdoptResult(result, verified)
    plan = removal_preview(store, model)
    removed, freed = _remove(store, model, plan)
    return AdoptResult(result, verified, tuple(removed), freed, plan.shared)


def _check_unchanged(model: StoreModel) -> None:
    """Refuse when a file of ``model`` changed since it was listed (size, time, identity)."""
    for f in model.files:
        try:
            st = f.path.stat()
        except OSError as e:
            raise UserError(f"cannot read it any more ({e.strerror or e})", path=f.path) from None
        if (st.st_size, st.st_mtime, st.st_dev, st.st_ino) != (f.size, f.modified, *f.identity):
            raise UserError("changed since it was listed (a download still running?): "
                            "list the store again", path=f.path)  # fmt: skip


def _remove(store: Store, model: StoreModel, plan: Removal) -> tuple[list[Path], int]:
    """Delete what ``plan`` names that is still what was listed: a link the model had, or a
    regular file inside the store with a listed identity; then the folders left empty."""
    checked = {f.identity for f in model.files}  # the bytes listed (and, adopting, compared)
    links = {f.path for f in model.files}
    root = store.root.resolve()
    removed: list[Path] = []
    freed = 0
    for path in plan.paths:
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                if path not in links:
                    continue
                size = 0
            elif not (stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) in checked
                      and path.resolve().is_relative_to(root)):  # fmt: skip
                continue  # not what was verified, or not the store's own: never deleted
            else:
                size = st.st_size
            path.unlink()
        except FileNotFoundError:
            continue
        crash_point("adopt-original-removed")
        removed.append(path)
        freed += size
    for f in model.files:  # folders the removal left empty (an HF snapshot, an LM Studio model)
        parent = f.path.parent
        while parent != store.root and store.root in parent.parents and _is_empty(parent):
            parent.rmdir()
            parent = parent.parent
    return removed, freed


@dataclass(frozen=True)
class Deletion:
    """What deleting a store's model removed, freed, and kept (another model uses it)."""

    removed: tuple[Path, ...]
    freed: int
    kept_shared: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"removed": [str(p) for p in self.removed], "freed": self.freed,
                "kept_shared": [str(p) for p in self.kept_shared]}  # fmt: skip


def delete_model(
    store: Store, model: StoreModel, models: list[StoreModel] | None = None
) -> Deletion:
    """Delete a store's model when asked explicitly (no repository copy is checked): what
    :func:`removal_preview` names, only if every file is still as listed; files another model
    of the store uses stay. The folders written to are probed first (a read-only store would
    stop half way)."""
    _check_unchanged(model)
    plan = removal_preview(store, model, models)
    for folder in sorted({p.parent for p in plan.paths}):
        probe_folder(folder, f"delete {model.ref} from {store.title}")
    removed, freed = _remove(store, model, plan)
    return Deletion(tuple(removed), freed, plan.shared)


def model_folder(store: Store, model: StoreModel) -> Path:
    """The folder that holds ``model`` in its store (its files' common folder, as listed;
    the store's own folder when they share none below it): what Show in folder opens."""
    parents = [f.path.parent for f in model.files]
    if not parents:
        return store.root
    common = Path(os.path.commonpath(parents))
    return common if common == store.root or store.root in common.parents else store.root


def _adopted_before(ws: Workspace, into: str, source: str, model: StoreModel) -> Manifest | None:
    """The newest version of ``into`` adopted from ``source`` that has every file ``model``
    still has, with the same size (the rest may have been removed by that adoption): an
    adoption to resume rather than repeat."""
    sizes = {f.name: f.size for f in model.files}
    for seq in reversed(ws.repo.version_numbers(into)):
        try:
            manifest = ws.repo.read_manifest(into, seq)
        except ModelManagerError:
            continue
        if manifest.metadata.get("adopted_from") != source:
            continue
        have = {rec.path: rec.size for rec in manifest.files}
        if all(have.get(name) == size for name, size in sizes.items()):
            return manifest
    return None


def _is_empty(folder: Path) -> bool:
    try:
        return not any(folder.iterdir())
    except OSError:
        return False
