"""A version's original files in a folder any tool can read, kept in the per-user cache.

The first checkout of a version exports it (:func:`services.exporting.export_manifest`: every
chunk verified) into a temporary folder beside its place, renamed into place once complete,
so an interrupted checkout is never taken for a finished one. A stamp beside the folder
records the version (a digest of its manifest) and each file's content digest (of its chunk
ids), size, mtime and inode. The next checkout of the same version checks the stamp against
the files' stat, not their bytes, and returns the folder as it is; anything changed (a file
edited, removed, the folder half deleted) and it is made again. A file whose content digest
matches a file of another checkout of the same model (as its stamp still vouches for) is a hard
link to it, not a second copy.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelmanager import paths
from modelmanager.core.ids import content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.lock import WriterLock
from modelmanager.core.repo.manifest import FileRecord, Manifest
from modelmanager.core.storage.atomic import fsync_dir
from modelmanager.errors import UserError
from modelmanager.services import Workspace
from modelmanager.services.exporting import export_manifest

STAMP = ".stamp.json"
STAMP_FORMAT = 1
#: Seconds a checkout waits for another process making a checkout of the same model.
LOCK_WAIT = 3600.0


def checkouts_dir(ws: Workspace) -> Path:
    """Where this repository's checkouts live in the per-user cache."""
    where = content_id(str(ws.repo.root.resolve()).encode())[:16]
    return paths.cache_dir() / "checkouts" / where


def _model_dir(ws: Workspace, model: str) -> Path:
    safe = model.replace("/", "--")
    return checkouts_dir(ws) / f"{safe}-{content_id(model.encode())[:8]}"


def file_digest(f: FileRecord) -> str:
    """The identity of a file's content: a digest of its chunk ids (equal ids, equal bytes)."""
    return content_id(" ".join(c.id for c in f.chunks).encode())


def _stat(path: Path) -> list[int]:
    st = path.lstat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_stamp(stamp: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(doc, dict) and doc.get("format") == STAMP_FORMAT
    return doc if ok and isinstance(doc.get("files"), dict) else None


def _valid_files(folder: Path, doc: dict[str, Any]) -> dict[str, tuple[str, Path]]:
    """path -> (content digest, file) of every file the stamp lists whose stat still matches."""
    out = {}
    for rel, entry in doc["files"].items():
        target = folder.joinpath(*str(rel).split("/"))
        try:
            if isinstance(entry, list) and len(entry) == 4 and _stat(target) == entry[1:]:
                out[rel] = (str(entry[0]), target)
        except OSError:
            continue
    return out


def _manifest_digest(manifest: Manifest) -> str:
    return content_id(manifest.to_bytes())


def _is_complete(folder: Path, manifest: Manifest) -> bool:
    """The stamp names this very version and every file of it still has its stamped stat."""
    doc = _read_stamp(folder.with_name(folder.name + STAMP))
    if doc is None or doc.get("manifest") != _manifest_digest(manifest):
        return False
    return len(_valid_files(folder, doc)) == len(manifest.files) == len(doc["files"])


def _linkable(model_dir: Path, own: Path) -> dict[str, Path]:
    """content digest -> a file of another checkout of the model that its stamp vouches for."""
    out: dict[str, Path] = {}
    for stamp in sorted(model_dir.glob("*" + STAMP)):
        folder = stamp.with_name(stamp.name[: -len(STAMP)])
        doc = _read_stamp(stamp)
        if folder == own or doc is None:
            continue
        for digest, target in _valid_files(folder, doc).values():
            out.setdefault(digest, target)
    return out


def _link(source: Path, target: Path) -> bool:
    """Hard-link ``target`` to ``source``; False where the filesystem cannot."""
    try:
        os.link(source, target)
    except OSError:
        return False
    return True


def _remove(folder: Path) -> None:
    if folder.exists() or folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


def checkout(ws: Workspace, ref: str, ctx: JobContext | None = None) -> Path:
    """The folder holding the version ``ref`` names, made (or made again) if needed.

    Making one holds the model's checkout lock (an OS lock: gone with a killed process), so two
    processes asking at once make it once and never remove a folder the other returned."""
    manifest = ws.repo.resolve(ref)
    model_dir = _model_dir(ws, manifest.model)
    folder = model_dir / f"v{manifest.seq}"
    if _is_complete(folder, manifest):
        return folder
    try:
        (model_dir / "locks").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot make the checkout ({e.strerror or e})", path=folder) from None
    lock = WriterLock(model_dir / "locks")
    lock.acquire(LOCK_WAIT, cancelled=ctx.cancel_event.is_set if ctx is not None else None)
    try:
        if _is_complete(folder, manifest):
            return folder  # made by another process while this one waited
        return _make(ws, manifest, folder, ctx)
    finally:
        lock.release()


def _make(ws: Workspace, manifest: Manifest, folder: Path, ctx: JobContext | None) -> Path:
    """Export (or link) every file into a temporary folder, rename it into place, stamp it."""
    model_dir = folder.parent
    stamp = folder.with_name(folder.name + STAMP)
    for stale in model_dir.glob(".v*.tmp"):  # left by a killed checkout (this one holds the lock)
        _remove(stale)
    tmp = model_dir / f".v{manifest.seq}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.mkdir(parents=True)
        links = _linkable(model_dir, folder)
        to_fetch = []
        for f in manifest.files:
            source = links.get(file_digest(f))
            target = tmp.joinpath(*f.path.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            if source is None or not _link(source, target):
                to_fetch.append(f)
        if to_fetch:
            export_manifest(ws, replace(manifest, files=tuple(to_fetch)), tmp, ctx=ctx)
        for f in manifest.files:
            os.chmod(tmp.joinpath(*f.path.split("/")), 0o444)  # a shared inode: read only
        stamp.unlink(missing_ok=True)
        _remove(folder)
        os.rename(tmp, folder)
        doc = {"format": STAMP_FORMAT, "ref": manifest.ref, "manifest": _manifest_digest(manifest),
               "files": {f.path: [file_digest(f), *_stat(folder.joinpath(*f.path.split("/")))]
                         for f in manifest.files}}  # fmt: skip
        part = stamp.with_name(stamp.name + f".{uuid.uuid4().hex[:8]}.tmp")
        part.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
        os.replace(part, stamp)
        fsync_dir(model_dir)
    except OSError as e:
        raise UserError(f"cannot make the checkout ({e.strerror or e})", path=folder) from None
    finally:
        _remove(tmp)
    return folder
